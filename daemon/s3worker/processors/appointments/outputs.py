"""The appointments processor's BI tables (see `s3worker.processors.bi`)."""

from __future__ import annotations

from s3worker.processors.bi import BiTable

SCHEMAS = "s3worker.processors.appointments.analysis"


TABLES = (
    BiTable(
        "appointments_daily_professional", "appointments", "daily_professional.parquet",
        "Bookings, cancellations, no-shows, attended and no-show rate per day and professional",
        f"{SCHEMAS}:SUMMARY",
    ),
    BiTable(
        "appointments_conflicts", "appointments", "conflicts.parquet",
        "Overlapping bookings of one professional or one patient",
        f"{SCHEMAS}:CONFLICTS",
    ),
    BiTable(
        "appointments_bookings", "appointments", "appointments.parquet",
        "Every booking, normalised: who, when, lead time, status",
        f"{SCHEMAS}:BOOKINGS",
    ),
)  # fmt: skip
