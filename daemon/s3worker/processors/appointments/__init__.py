"""Clinic schedules: normalised bookings, double-booking conflicts, day/professional summaries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from s3worker.processors.appointments.schema import SCHEMA
from s3worker.processors.tabular.processor import TabularProcessor


class AppointmentsProcessor(TabularProcessor):
    """Bookings table, conflicts, and per-day / per-professional summaries.

    A start may be one column or a date and a time of day; date-only schedules are read as
    whole-day bookings, for which time conflicts are not reported."""

    name = "appointments"
    version = "2"
    schema = SCHEMA
    thresholds: ClassVar[Mapping[str, float]] = {"default_minutes": 30.0}
    analysis = "s3worker.processors.appointments.analysis"
