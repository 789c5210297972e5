"""The shared reader: encodings detected by content; undecodable rows rejected, not the file."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest
from processing import run, table
from s3worker.errors import BadDataError
from s3worker.processors.base import read_sample
from s3worker.processors.registry import Registry

AGENDA = (
    "consulta_id;paciente;profissional;data_consulta;duracao;situacao\n"
    "1;João;Médico Conceição;03/06/2024 09:00;30;realizada\n"
    "2;Conceição;Médico Conceição;03/06/2024 09:15;30;faltou\n"
    "3;João;Dra Lima;03/06/2024 09:10;20;realizada\n"
)
SALES = (
    "date,store,ticket,product,quantity,unit_price\n"
    "2024-02-01,São Paulo,T1,pão de açúcar,2,5.5\n"
    "2024-02-01,São Paulo,T1,café,1,8\n"
    "2024-02-02,Niterói,T2,café,3,12\n"
)


@pytest.mark.parametrize(
    ("encoding", "gz"), [("latin-1", False), ("cp1252", False), ("cp1252", True)]
)
def test_latin1_appointments_keep_their_accents(tmp_path: Path, encoding: str, gz: bool) -> None:
    # given a Portuguese clinic export saved by Windows in latin-1 / cp1252 (maybe gzipped)
    src = tmp_path / "agenda.csv"
    data = AGENDA.encode(encoding)
    src.write_bytes(gzip.compress(data) if gz else data)
    # when it is routed by content and processed
    assert Registry().route(read_sample(src, key="x.bin")).name == "appointments"
    result = run("appointments", src, tmp_path / "out")
    # then the names come out with their accents, and the summary says how it was read
    bookings = table(tmp_path / "out", "appointments.parquet", ["appointment_id"])
    assert bookings["patient_id"].tolist() == ["João", "Conceição", "João"]
    assert bookings["professional_id"].tolist()[0] == "Médico Conceição"
    assert bookings["status"].tolist() == ["attended", "no_show", "attended"]
    assert result.summary["encoding"] == "cp1252"
    assert result.summary["rejected_rows"] == 0
    assert result.summary["conflicts"] == {"professional": 1, "patient": 1}


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_utf16_sales_export_is_read(tmp_path: Path, encoding: str) -> None:
    # given an Excel "Unicode text" sales export (UTF-16 with a BOM)
    src = tmp_path / "vendas.csv"
    src.write_bytes(("\ufeff" + SALES).encode(encoding) if encoding.endswith("be") else
                    SALES.encode(encoding))  # fmt: skip
    # when it is routed by content and processed
    assert Registry().route(read_sample(src, key="x.bin")).name == "sales"
    result = run("sales", src, tmp_path / "out")
    # then every line counts, with the accented names intact
    detail = pd.read_parquet(tmp_path / "out" / "sales")
    assert set(detail["store"]) == {"São Paulo", "Niterói"}
    assert result.summary["revenue"] == pytest.approx(2 * 5.5 + 8 + 36)
    assert result.summary["rejected_rows"] == 0
    assert result.summary["encoding"].startswith("utf-16")


@pytest.mark.parametrize("filler", [0, 5_000])  # the bad bytes inside, then past, the sample
def test_one_invalid_utf8_sequence_rejects_one_row(tmp_path: Path, filler: int) -> None:
    # given a UTF-8 export with one invalid byte sequence in one row
    day = "{:02}/06/2024 {:02}:00".format
    rows = [f"{i};João {i};Dr Silva;{day(1 + i % 28, i % 24)};1;x" for i in range(filler + 40)]
    lines = [line.encode() for line in rows]
    lines[filler + 20] = b"bad;Jo\xe3\xff;Dr Silva;04/06/2024 09:00;1;x"
    src = tmp_path / "agenda.csv"
    header = b"consulta_id;paciente;profissional;data_consulta;duracao;situacao\n"
    src.write_bytes(header + b"\n".join(lines) + b"\n")
    # when processed
    result = run("appointments", src, tmp_path / "out")
    # then that row alone is rejected, with the reason, and the rest is processed
    rejected = pd.read_parquet(tmp_path / "out" / "rejected.parquet")
    assert rejected["reason"].tolist() == ["undecodable bytes for the file's encoding (utf-8)"]
    assert "Jo\\xe3\\xff" in rejected["raw"][0]
    assert result.summary["bookings"] == filler + 39
    assert result.summary["encoding"] == "utf-8"


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_undecodable_json_record_is_rejected_alone(tmp_path: Path, fmt: str) -> None:
    records = [
        json.dumps(
            {"id": i, "patient": "Conceição", "start": f"2024-06-03T0{i}:00:00Z"},
            ensure_ascii=False,
        ).encode()
        for i in range(1, 6)
    ]
    records[2] = records[2].replace("Conceição".encode(), b"Concei\xe7\xe3o")
    body = b"\n".join(records) if fmt == "jsonl" else b"[" + b",\n".join(records) + b"]"
    src = tmp_path / f"agenda.{fmt}"
    src.write_bytes(body)
    result = run("appointments", src, tmp_path / "out")
    assert result.summary["bookings"] == 4
    assert result.summary["rejected_rows"] == 1


def test_undecodable_log_line_is_rejected_alone(tmp_path: Path) -> None:
    line = '10.0.0.{} - - [03/Jun/2024:09:00:0{} +0000] "GET /ação HTTP/1.1" 200 512 "-" "curl"'
    lines = [line.format(i, i).encode() for i in range(6)]
    lines[3] = lines[3].replace("ação".encode(), b"a\xe7\xe3o\xff")
    src = tmp_path / "access.log"
    src.write_bytes(b"\n".join(lines) + b"\n")
    result = run("applogs", src, tmp_path / "out")
    rejected = pd.read_parquet(tmp_path / "out" / "rejected.parquet")
    assert rejected["reason"].tolist() == ["undecodable bytes for the file's encoding (utf-8)"]
    assert result.summary["requests"] == 5


# --- hostile values and shapes (issue 11): each rejected or refused with a reason -------


def test_utf16_without_bom_keeps_its_first_character(tmp_path: Path) -> None:
    src = tmp_path / "vendas.csv"
    src.write_bytes(SALES.encode("utf-16-le"))  # no BOM
    result = run("sales", src, tmp_path / "out")
    assert result.summary["lines"] == 3  # "date" was read as "ate" and the file rejected
    assert result.summary["encoding"] == "utf-16le"


def test_out_of_range_dates_are_rejected_per_row_not_wrapped(tmp_path: Path) -> None:
    src = tmp_path / "sales.csv"
    src.write_text(
        "date,product,amount\n"
        "9999-12-31T00:00:00,a,1\n0001-01-01,b,1\n31/12/9999,c,1\n2024-05-01,d,1\n"
    )
    result = run("sales", src, tmp_path / "out")
    rejected = pd.read_parquet(tmp_path / "out/rejected.parquet")
    assert rejected["reason"].tolist() == ["date: out of range (1900-01-01..2200-01-01)"] * 3
    parts = sorted(p.parent.name for p in (tmp_path / "out/sales").glob("dt=*/part-0.parquet"))
    assert parts == ["dt=2024-05-01"]  # no dt=1816-03-29
    assert result.summary["lines"] == 1


def test_non_finite_amounts_are_rejected_and_summary_is_strict_json(tmp_path: Path) -> None:
    src = tmp_path / "sales.csv"
    src.write_text(
        "date,product,quantity,unit_price\n"
        "2024-05-01,a,inf,1\n2024-05-01,b,1,1e400\n2024-05-01,c,NaN,2\n"
        "2024-05-01,d,1e200,1e200\n2024-05-01,e,2,3\n"
    )
    result = run("sales", src, tmp_path / "out")
    reasons = pd.read_parquet(tmp_path / "out/rejected.parquet")["reason"].tolist()
    assert reasons == [
        "quantity: not a finite number",
        "unit_price: not a finite number",
        "quantity: not a finite number",
        "revenue: out of range",
    ]
    assert result.summary["revenue"] == 6.0

    def strict(token: str) -> float:
        raise AssertionError(f"summary.json holds {token}")

    json.loads((tmp_path / "out/summary.json").read_text(), parse_constant=strict)


def test_a_million_column_header_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "wide.csv"
    src.write_text(",".join(f"c{i}" for i in range(5_000)) + "\n" + "1," * 4_999 + "1\n")
    with pytest.raises(BadDataError, match="the header has 5,000 columns; at most 4,096"):
        run("sales", src, tmp_path / "out")


def test_an_over_long_json_line_is_one_reject(tmp_path: Path) -> None:
    src = tmp_path / "sales.jsonl"
    big = json.dumps({"date": "2024-05-01", "product": "x" * (9 << 20), "amount": 1})
    ok = json.dumps({"date": "2024-05-01", "product": "y", "amount": 2})
    src.write_text(f"{ok}\n{big}\n{ok}\n")
    result = run("sales", src, tmp_path / "out")
    reasons = pd.read_parquet(tmp_path / "out/rejected.parquet")["reason"].tolist()
    assert reasons == ["line 2 is longer than 8 MiB characters"]
    assert result.summary["revenue"] == 4.0


def test_an_over_long_csv_row_is_one_reject(tmp_path: Path) -> None:
    src = tmp_path / "sales.csv"
    src.write_text("date,product,amount\n2024-05-01,a,1\n2024-05-01," + "x" * (9 << 20) + ",1\n")
    result = run("sales", src, tmp_path / "out")
    reasons = pd.read_parquet(tmp_path / "out/rejected.parquet")["reason"].tolist()
    assert reasons == ["row longer than 8 MiB (9,437,195 bytes)"]
    assert result.summary["lines"] == 1


def test_truncated_gzip_names_the_byte(tmp_path: Path) -> None:
    body = SALES.encode() + b"".join(
        f"2024-02-0{i % 9 + 1},Loja {i},T{i},item {i * 7919 % 100003},1,{i}\n".encode()
        for i in range(200_000)
    )
    packed = gzip.compress(body)
    src = tmp_path / "sales.csv.gz"
    src.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(
        BadDataError, match=r"the gzip stream is corrupt or truncated \(found at byte"
    ):
        run("sales", src, tmp_path / "out")


def test_corrupt_gzip_is_refused_when_routing(tmp_path: Path) -> None:
    src = tmp_path / "x.csv.gz"
    src.write_bytes(b"\x1f\x8b\x08\x00" + b"\xff" * 64)
    with pytest.raises(BadDataError, match="the gzip stream is corrupt or truncated"):
        Registry().route(read_sample(src, key="x.csv.gz"))
