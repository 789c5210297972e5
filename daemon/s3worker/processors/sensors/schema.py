"""The sensors roles: a time, and optionally a device, a metric name and a value column.

Without a device the file is one device named after its key; without metric/value columns
every numeric column is a metric (wide format); a lone value column is a metric of its own.
"""

from __future__ import annotations

from s3worker.processors.schema import Role, Schema

ROLES = (
    Role(
        "timestamp",
        ("timestamp", "ts", "time", "datetime", "readingtime", "measuredat", "eventtime",
         "datahora", "timeofmeasurement", "zeitstempel", "fechahora", "instante", "utc",
         "timestamputc", "recordedat", "sampletime"),
        ("timestamp", "datetime", "time", "zeit", "zeitpunkt", "instante", "momento"),
        "date",
        "a timestamp column",
    ),
    Role("date", ("date", "data", "fecha", "datum", "dia", "day"),
         ("date", "data", "fecha", "datum"), "date", "a date column"),
    Role("time", ("hour", "hora", "uhrzeit", "clock"), ("hora", "uhrzeit"), "clock"),
    Role(
        "device",
        ("device", "deviceid", "sensor", "sensorid", "machine", "machineid", "equipment",
         "equipamento", "dispositivo", "asset", "assetid", "maquina", "moteid", "node",
         "nodeid", "station", "stationid", "meter", "meterid", "geraet", "anlage", "location",
         "estacao", "estacion"),
        ("device", "sensor", "machine", "equipment", "asset", "mote", "station", "meter",
         "geraet", "dispositivo", "equipamento"),
    ),
    Role("metric", ("metric", "measurement", "variable", "channel", "metrica", "grandeza",
                    "sensortype", "messgroesse", "variavel"), ("metric", "channel")),
    Role("value", ("value", "reading", "val", "valor", "measurementvalue", "leitura", "wert",
                   "messwert", "lectura"), ("value", "reading", "valor", "wert", "leitura")),
)  # fmt: skip
SCHEMA = Schema("sensors", ROLES, required=(("timestamp", "date"),))
