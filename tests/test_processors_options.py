"""Processor options: one validated configuration; the file says what it is when names fail."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from s3worker.cli import main
from s3worker.config import Settings
from s3worker.errors import ConfigError
from s3worker.processors.base import JobContext, execute
from s3worker.processors.options import Options, load_config, load_local
from s3worker.processors.registry import registry

DATA = Path(__file__).parent / "data"
BASE_ENV = {
    "S3WORKER_QUEUE_URL": "https://q",
    "S3WORKER_OUTPUT_BUCKET": "b",
    "S3WORKER_INPUT_BUCKETS": "raw",
}


def run_with(src: Path, out: Path, kind: str, **options: object) -> dict[str, object]:
    ctx = JobContext(key=src.name, size=src.stat().st_size, options=Options.parse(options, "t"))
    return execute(registry.get(kind), src, out, ctx).summary


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"routes": [{"prefix": "a/", "options": {"colour": 1}}]}, "unknown option(s) ['colour']"),
        ({"routes": [{"prefix": "a/", "options": {"delimiter": ";;"}}]}, "options.delimiter"),
        ({"routes": [{"prefix": "a/", "options": {"timezone": "Mars/Base"}}]}, "IANA time zone"),
        ({"routes": [{"prefix": "a/", "options": {"header": ["x"]}}]}, "needs a processor"),
        ({"routes": [{"prefix": "a/", "options": {"decimal": ";"}}]}, "options.decimal"),
        ({"routes": [{"processor": "sales"}]}, "routes[0].prefix: required"),
        ({"rutes": []}, 'expected {"routes": [...]}'),
    ],
)
def test_invalid_documents_are_refused_with_the_key(doc: object, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(json.dumps(doc))
    assert message in str(err.value)
    assert str(err.value).startswith("S3WORKER_PROCESSOR_CONFIG")


def test_settings_validate_roles_and_thresholds_against_the_processor() -> None:
    bad_role = {
        "routes": [{"prefix": "s/", "processor": "sales", "options": {"mapping": {"sku": "x"}}}]
    }
    with pytest.raises(ConfigError, match="sales has no role 'sku'; roles: date, product"):
        Settings.from_env({**BASE_ENV, "S3WORKER_PROCESSOR_CONFIG": json.dumps(bad_role)})
    bad_threshold = {
        "routes": [{"prefix": "s/", "processor": "sales", "options": {"thresholds": {"z": 3}}}]
    }
    with pytest.raises(ConfigError, match="sales has no threshold 'z'; thresholds: top_n"):
        Settings.from_env({**BASE_ENV, "S3WORKER_PROCESSOR_CONFIG": json.dumps(bad_threshold)})
    unknown = {"routes": [{"prefix": "s/", "processor": "salez"}]}
    with pytest.raises(ConfigError, match="no processor named 'salez'"):
        Settings.from_env({**BASE_ENV, "S3WORKER_PROCESSOR_CONFIG": json.dumps(unknown)})


def test_settings_read_a_toml_file_and_route_with_it(tmp_path: Path) -> None:
    path = tmp_path / "processors.toml"
    path.write_text(
        '[[routes]]\nprefix = "clinics/"\nprocessor = "appointments"\n'
        '[routes.options]\ndelimiter = ";"\ntimezone = "America/Recife"\n'
        '[[routes]]\nprefix = "clinics/recife/"\n[routes.options]\ndecimal = ","\n'
    )
    settings = Settings.from_env({**BASE_ENV, "S3WORKER_PROCESSOR_CONFIG": str(path)})
    assert ("clinics/", "appointments") in settings.routes
    config = settings.processor_config
    assert config.for_key("clinics/x.csv").timezone == "America/Recife"
    assert config.for_key("clinics/recife/x.csv").decimal == ","  # the longest prefix
    assert config.for_key("other/x.csv") == Options()


@pytest.mark.parametrize(("name", "body"), [("p.toml", "[[routes]\nprefix ="), ("p.json", "{")])
def test_a_malformed_config_file_is_a_config_error(tmp_path: Path, name: str, body: str) -> None:
    path = tmp_path / name
    path.write_text(body)
    with pytest.raises(ConfigError, match="not valid JSON/TOML"):
        Settings.from_env({**BASE_ENV, "S3WORKER_PROCESSOR_CONFIG": str(path)})


def test_local_options_over_a_config(tmp_path: Path) -> None:
    doc = {"routes": [{"prefix": "vendas/", "processor": "sales", "options": {"decimal": ","}}]}
    processor, options = load_local(
        json.dumps(doc), ["mapping.revenue=Valor", "header=a,b", "thresholds.top_n=5"], "vendas/x"
    )
    assert processor == "sales"
    assert options.decimal == ","
    assert dict(options.mapping) == {"revenue": "Valor"}
    assert options.header == ("a", "b")
    assert options.thresholds == {"top_n": 5.0}


def test_headerless_real_file_through_the_cli_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given the supermarket export without its header row, and a config naming the columns
    lines = (DATA / "sales/supermarket_sales.csv").read_text().splitlines()
    src = tmp_path / "export-no-header.csv"
    src.write_text("\n".join(lines[1:]) + "\n")
    names = [n.strip('"') for n in lines[0].split(",")]
    config = tmp_path / "options.json"
    config.write_text(json.dumps({"header": names, "date_format": "%m/%d/%Y"}))
    # when processed locally with it
    code = main(["process", str(src), "--processor", "sales", "--config", str(config),
                 "--out", str(tmp_path / "out")])  # fmt: skip
    # then every row is read, and the figures are the file's (see test_processors_real_files)
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["lines"], summary["rejected_rows"]) == (1000, 0)
    assert summary["revenue"] == pytest.approx(322966.749, abs=0.01)


def test_headerless_file_needs_a_processor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "x.csv"
    src.write_text("1,2\n")
    assert main(["process", str(src), "--option", "header=a,b"]) == 2
    assert "needs --processor" in capsys.readouterr().err


def test_mapping_names_a_column_the_names_do_not(tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    src.write_text(
        "quando,maquina,leitura_x\n2024-01-01T00:00:00Z,m1,1.5\n2024-01-01T00:01:00Z,m1,2\n"
    )
    summary = run_with(
        src, tmp_path / "out", "sensors", mapping={"device": "maquina", "value": "leitura_x"}
    )
    assert summary["readings"] == 2
    stats = pd.read_parquet(tmp_path / "out/device_stats.parquet")
    assert stats[["device", "metric"]].values.tolist() == [["m1", "leitura_x"]]


def test_mapping_to_a_missing_column_says_so(tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    src.write_text("a,b\n1,2\n")
    with pytest.raises(Exception, match=r"mapping.date='Datum': the file has no such column"):
        run_with(src, tmp_path / "out", "sales", mapping={"date": "Datum"})


def test_timezone_date_format_decimal_and_threshold_options(tmp_path: Path) -> None:
    src = tmp_path / "agenda.csv"
    src.write_text("paciente|medico|quando\nAna|Dr A|2024.06.03 09.00\nBia|Dr A|2024.06.03 09.30\n")
    summary = run_with(
        src, tmp_path / "out", "appointments", delimiter="|", date_format="%Y.%m.%d %H.%M",
        timezone="America/Sao_Paulo", mapping={"start": "quando"},
        thresholds={"default_minutes": 45},
    )  # fmt: skip
    bookings = pd.read_parquet(tmp_path / "out/appointments.parquet")
    assert bookings["start"].dt.strftime("%H:%M").tolist() == ["12:00", "12:30"]  # UTC-3
    assert (bookings["end"] - bookings["start"]).dt.total_seconds().tolist() == [2700.0, 2700.0]
    assert summary["conflicts"] == {"professional": 1, "patient": 0}  # 45 min overlap 30 min
    prices = tmp_path / "vendas.csv"
    prices.write_text('data,produto,valor\n2024-01-01,a,1.234\n2024-01-01,b,"2.000,5"\n')
    assert run_with(prices, tmp_path / "o2", "sales", decimal=",")["revenue"] == 3234.5
