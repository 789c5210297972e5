"""The appointments roles and status words, in English, Portuguese and Spanish exports."""

from __future__ import annotations

from s3worker.processors.schema import Role, Schema

# Status words (accents folded, lower case) -> the status they mean; first listed wins.
STATUS_WORDS = {
    "cancelled": ("cancel", "desmarc", "anulad", "storn", "abgesagt"),
    "no_show": ("no-show", "noshow", "no show", "missed", "falt", "ausente", "nao compareceu",
                "nao cheg", "did not attend", "dna", "no asist", "nicht erschienen"),
    "attended": ("attend", "complet", "done", "realizad", "compareceu", "atendid", "show",
                 "asisti", "finaliz", "concluid", "erschienen"),
}  # fmt: skip
# Status codes: an index into STATUSES (-1: a flag that says nothing).
STATUSES = ("cancelled", "no_show", "attended", "scheduled")
CANCELLED, NO_SHOW, ATTENDED, SCHEDULED = range(4)
ROLES = (
    Role(
        "start",
        ("appointmentday", "appointmentstart", "appointmentat", "appointmenttime", "start",
         "startat", "starttime", "datetime", "dataconsulta", "datahora", "inicio", "horario",
         "horainicio", "datainicio", "fechahora", "fechacita", "beginn", "termin"),
        ("start", "inicio", "begin", "beginn"),
        "date",
        "a start (date and time) column",
    ),
    Role("end", ("end", "endat", "endtime", "appointmentend", "fim", "termino", "horafim",
                 "datafim", "fin", "horafin", "ende"), ("end", "fim", "fin", "ende")),
    Role("scheduled_at", ("scheduledday", "scheduledat", "scheduled", "bookedat", "createdat",
                          "dataagendamento", "dataregistro", "datamarcacao", "fechareserva"),
         ("scheduled", "booked", "created", "agendamento", "registro", "marcacao", "reserva")),
    Role(
        "date",
        ("date", "data", "fecha", "datum", "dia", "day", "appointmentdate", "datacita"),
        ("date", "data", "fecha", "datum", "dia", "day"),
        "date",
        "a date column",
    ),
    Role("time", ("time", "hora", "hour", "uhrzeit", "appointmenttime", "timeslot", "slot"),
         ("time", "hora", "slot"), "clock"),
    Role("appointment_id", ("appointmentid", "id", "bookingid", "consultaid", "idconsulta",
                            "agendamentoid", "citaid", "idcita")),
    Role(
        "patient_id",
        ("patientid", "patient", "paciente", "pacienteid", "idpaciente", "patientname",
         "nomepaciente", "pessoa", "usuario", "cliente", "patientin", "client", "clientcode",
         "customer", "customerid"),
        ("patient", "paciente", "pessoa", "patientin", "client", "customer"),
        label="a patient column",
    ),
    Role(
        "professional_id",
        ("professionalid", "professional", "doctor", "doctorid", "provider", "providerid",
         "practitioner", "medico", "medicoid", "profissional", "profissionalid",
         "idprofissional", "doutor", "arzt", "prestador", "especialista", "staff", "staffcode",
         "staffid", "stylist", "therapist", "employee"),
        ("professional", "doctor", "provider", "practitioner", "medico", "profissional",
         "doutor", "arzt", "prestador", "staff", "stylist", "therapist"),
        label="a professional (doctor) column",
    ),
    Role("duration_min", ("durationmin", "durationminutes", "duration", "duracao",
                          "duracaomin", "duracion", "dauer"), ("duration", "duracao", "duracion")),
    Role("status", ("status", "situacao", "estado", "statusconsulta"), ("status", "situacao"),
         "status"),
    Role("no_show", ("noshow", "faltou", "falta", "noshowflag")),
    # A flag the other way round: yes = the patient came.
    Role("showed_up", ("showupstatus", "showedup", "showup", "attended", "compareceu",
                       "presente", "asistio")),
)  # fmt: skip
SCHEMA = Schema(
    "appointments",
    ROLES,
    required=(("start", "date"), ("patient_id", "professional_id")),
    statuses=STATUS_WORDS,
)
