"""Clinic schedules: normalised bookings, double-booking conflicts, day/professional summaries."""

from __future__ import annotations

from pathlib import Path

from s3worker.processors.base import JobContext, Processor, ProcessResult, Sample
from s3worker.processors.sniffing import score, shape_of

# Canonical field -> accepted column names, normalised (see sniffing.norm): English and
# Portuguese exports, and the Kaggle "medical appointment no-shows" names.
ALIASES: dict[str, tuple[str, ...]] = {
    "appointment_id": (
        "appointmentid",
        "id",
        "bookingid",
        "consultaid",
        "idconsulta",
        "agendamentoid",
    ),
    "patient_id": ("patientid", "patient", "paciente", "pacienteid", "idpaciente", "patientname"),
    "professional_id": (
        "professionalid",
        "professional",
        "doctor",
        "doctorid",
        "provider",
        "providerid",
        "practitioner",
        "medico",
        "medicoid",
        "profissional",
        "profissionalid",
        "idprofissional",
    ),
    "scheduled_at": (
        "scheduledday",
        "scheduledat",
        "scheduled",
        "bookedat",
        "createdat",
        "dataagendamento",
    ),
    "start": (
        "appointmentday",
        "appointmentstart",
        "appointmentat",
        "appointmenttime",
        "start",
        "startat",
        "starttime",
        "datetime",
        "dataconsulta",
        "datahora",
        "inicio",
        "horario",
    ),
    "end": ("end", "endat", "endtime", "appointmentend", "fim", "termino"),
    "duration_min": ("durationmin", "durationminutes", "duration", "duracao", "duracaomin"),
    "status": ("status", "situacao", "estado"),
    "no_show": ("noshow", "faltou", "falta", "noshowflag"),
}


class AppointmentsProcessor(Processor):
    """Bookings table, conflicts, and per-day / per-professional summaries."""

    name = "appointments"
    version = "1"

    def sniff(self, sample: Sample) -> float:
        a = ALIASES
        shape = shape_of(sample)
        either = a["patient_id"] + a["professional_id"]
        return score(
            shape,
            [a["start"], either],
            [a["patient_id"], a["professional_id"], a["status"] + a["no_show"]],
        )

    def process(self, src: Path, out_dir: Path, ctx: JobContext) -> ProcessResult:
        # pandas loads here, in the worker process, never when routing.
        from s3worker.processors.appointments.analysis import run

        return run(src, out_dir, ctx)
