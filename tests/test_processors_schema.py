"""Schema resolution: names, words and content find the roles; required vs optional roles."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from processing import run
from s3worker.errors import BadDataError, UnknownFormatError
from s3worker.processors.appointments.schema import SCHEMA as APPOINTMENTS
from s3worker.processors.base import read_sample
from s3worker.processors.registry import Registry
from s3worker.processors.sales.schema import SCHEMA as SALES
from s3worker.processors.schema import day_first, words
from s3worker.processors.sensors.schema import SCHEMA as SENSORS


def test_words_split_camel_case_and_punctuation() -> None:
    assert words("InvoiceDate") == {"invoice", "date"}
    assert words("Product line") == {"product", "line"}
    assert words("Situação") == {"situacao"}


def test_supermarket_columns_resolve_by_name_and_word() -> None:
    columns = ["Invoice ID", "Branch", "City", "Product line", "Unit price", "Quantity"]
    columns += ["Tax 5%", "Total", "Date", "Time", "Payment", "gross income"]
    found = SALES.match(columns)
    assert found.columns == {
        "date": "Date",
        "product": "Product line",
        "revenue": "Total",
        "unit_price": "Unit price",
        "quantity": "Quantity",
        "store": "Branch",
        "ticket": "Invoice ID",
        "time": "Time",
    }


def test_portuguese_schedule_resolves_date_and_time() -> None:
    found = APPOINTMENTS.match(["Paciente", "Médico", "Data", "Hora", "Situação"])
    assert found.columns == {
        "date": "Data",
        "time": "Hora",
        "patient_id": "Paciente",
        "professional_id": "Médico",
        "status": "Situação",
    }


def test_content_finds_a_required_role_the_names_do_not() -> None:
    # given columns named in no known way, but holding dates and amounts
    rows = [["05/01/2024", "caixa 1", "12,50"], ["06/01/2024", "caixa 2", "7,00"]]
    found = SALES.match(["quando", "onde", "quanto"], rows)
    assert (found.get("date"), found.get("revenue")) == ("quando", "quanto")
    assert found.how["date"] == found.how["revenue"] == "content"


def test_clock_column_named_like_a_start_is_read_with_the_date() -> None:
    rows = [["03/06/2024", "09:00", "Ana"], ["03/06/2024", "09:30", "Bia"]]
    found = APPOINTMENTS.match(["Data", "Horário", "Paciente"], rows)
    assert (found.get("date"), found.get("time"), found.get("start")) == ("Data", "Horário", None)


def test_missing_role_error_names_columns_accepted_names_and_the_option() -> None:
    with pytest.raises(BadDataError) as err:
        SENSORS.resolve(["device_id", "reading"])
    text = str(err.value)
    assert "sensors needs a timestamp column or a date column" in text
    assert "columns seen: ['device_id', 'reading']" in text
    assert "timestamp, ts, time, datetime" in text
    assert "--option mapping.timestamp=COLUMN" in text


def test_day_first_is_decided_by_the_values() -> None:
    assert day_first(["1/5/2019", "3/25/2019"]) is False
    assert day_first(["25/03/2019", "01/05/2019"]) is True
    assert day_first(["1/5/2019", "2/6/2019"]) is None


def test_portuguese_schedule_end_to_end(tmp_path: Path) -> None:
    # given the schedule issue 12 tried: "no processor recognises"
    src = tmp_path / "agenda.csv"
    src.write_text(
        "Paciente;Médico;Data;Hora;Situação\n"
        "Ana;Dr Silva;03/06/2024;09:00;Compareceu\n"
        "Bruno;Dr Silva;03/06/2024;09:15;Faltou\n"
        "Caio;Dr Silva;03/06/2024;09:20;Cancelado\n"
        "Diva;Dra Lima;04/06/2024;10:00;Desmarcado\n"
        "Ana;Dra Lima;03/06/2024;09:10;compareceu\n"
        "Eva;Dra Lima;04/06/2024;9999;compareceu\n",
        encoding="utf-8",
    )
    assert Registry().route(read_sample(src, key=src.name)).name == "appointments"
    result = run("appointments", src, tmp_path / "out")
    s = result.summary
    assert (s["bookings"], s["attended"], s["no_shows"], s["cancellations"]) == (5, 2, 1, 2)
    assert s["rejected_rows"] == 1
    bookings = pd.read_parquet(tmp_path / "out/appointments.parquet")
    assert bookings["start"].dt.strftime("%d/%m %H:%M").tolist()[:2] == [
        "03/06 09:00",
        "03/06 09:15",
    ]
    conflicts = pd.read_parquet(tmp_path / "out/conflicts.parquet")
    # Dr Silva 09:00 (30 min) vs 09:15 (Caio's 09:20 is cancelled); Ana 09:00 vs 09:10
    assert sorted(conflicts["kind"]) == ["patient", "professional"]


def test_timestamp_value_telemetry_is_one_series_named_after_the_key(tmp_path: Path) -> None:
    src = tmp_path / "machine-7.csv"
    rows = "\n".join(f"2024-01-01 00:{m:02d}:00,{20 + m % 3}" for m in range(40))
    src.write_text("timestamp,value\n" + rows + "\n")
    assert Registry().route(read_sample(src, key="plant/machine-7.csv")).name == "sensors"
    result = run("sensors", src, tmp_path / "out")
    stats = pd.read_parquet(tmp_path / "out/device_stats.parquet")
    assert stats[["device", "metric", "readings"]].values.tolist() == [["machine-7", "value", 40]]
    assert result.summary["devices"] == 1


def test_device_timestamp_value_uses_the_device(tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    src.write_text(
        "device_id,timestamp,value\nm1,2024-01-01T00:00:00Z,1\nm2,2024-01-01T00:00:00Z,2\n"
    )
    run("sensors", src, tmp_path / "out")
    stats = pd.read_parquet(tmp_path / "out/device_stats.parquet")
    assert sorted(stats["device"]) == ["m1", "m2"]


def test_sales_without_products_are_totals_by_day_and_store(tmp_path: Path) -> None:
    src = tmp_path / "caixa.csv"
    src.write_text("data;loja;valor\n01/02/2024;L1;10,50\n01/02/2024;L2;4\n02/02/2024;L1;1\n")
    result = run("sales", src, tmp_path / "out")
    assert result.summary["revenue"] == 15.5
    assert result.summary["products"] == 0
    assert result.summary["top_products"] == {}
    store = pd.read_parquet(tmp_path / "out/daily_store.parquet")
    assert store[["dt", "store", "revenue"]].values.tolist() == [
        ["2024-02-01", "L1", 10.5],
        ["2024-02-01", "L2", 4.0],
        ["2024-02-02", "L1", 1.0],
    ]
    assert len(pd.read_parquet(tmp_path / "out/top_products.parquet")) == 0


def test_spanish_sales_export(tmp_path: Path) -> None:
    src = tmp_path / "ventas.csv"
    src.write_text(
        "Fecha;Sucursal;Producto;Cantidad;Precio unitario\n"
        "03/01/2024;Centro;pan;2;1,50\n03/01/2024;Centro;leche;1;0,90\n"
        "04/01/2024;Norte;pan;4;1,50\n"
    )
    assert Registry().route(read_sample(src, key=src.name)).name == "sales"
    s = run("sales", src, tmp_path / "out").summary
    assert (s["revenue"], s["units"], s["stores"], s["first_day"]) == (9.9, 7.0, 2, "2024-01-03")


def test_unrecognised_file_says_how_to_route_it(tmp_path: Path) -> None:
    src = tmp_path / "x.csv"
    src.write_text("a,b\nfoo,bar\n")
    with pytest.raises(UnknownFormatError, match="S3WORKER_PROCESSOR_CONFIG"):
        Registry().route(read_sample(src, key=src.name))
