"""Real public files (tests/data/README.md), routed by content and processed out of the box.

Every expected figure below was computed from the file with plain pandas (the comment says
how), not by running the product.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from processing import run
from s3worker.processors.base import read_sample
from s3worker.processors.registry import Registry

DATA = Path(__file__).parent / "data"


def routed(path: Path) -> str:
    return Registry().route(read_sample(path, key=path.name)).name


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("sales/supermarket_sales.csv", "sales"),
        ("sales/baeckerei_umsatz.csv", "sales"),
        ("sales/online_retail_es.csv", "sales"),
        ("appointments/kaggle_noshow.csv", "appointments"),
        ("appointments/ebrain_agendamento.csv", "appointments"),
        ("appointments/health_track_clinic.csv", "appointments"),
        ("appointments/salon_future_bookings.csv", "appointments"),
        ("sensors/skab_valve1_0.csv", "sensors"),
        ("sensors/kiel_holstenstrasse_hour.csv", "sensors"),
        ("sensors/household_power_consumption.txt", "sensors"),
    ],
)
def test_real_files_route_to_their_processor(name: str, kind: str) -> None:
    assert routed(DATA / name) == kind


def test_supermarket_export_product_line_total_and_us_dates(tmp_path: Path) -> None:
    # given "Invoice ID, Branch, ..., Product line, Unit price, Quantity, Tax 5%, Total, Date"
    # when processed
    result = run("sales", DATA / "sales/supermarket_sales.csv", tmp_path / "out")
    s = result.summary
    # then: df["Total"].sum(); pd.to_datetime(df["Date"], format="%m/%d/%Y") min/max/nunique;
    # df["Invoice ID"].nunique(); df["Quantity"].sum(); groupby("Product line")["Total"] max
    assert s["revenue"] == pytest.approx(322966.749, abs=0.01)
    assert (s["first_day"], s["last_day"], s["days"]) == ("2019-01-01", "2019-03-30", 89)
    assert (s["tickets"], s["units"], s["stores"], s["products"]) == (1000, 5510, 3, 6)
    assert next(iter(s["top_products"])) == "Food and beverages"
    store = pd.read_parquet(tmp_path / "out/daily_store.parquet").groupby("store")["revenue"]
    # df.groupby("Branch")["Total"].sum()
    assert store.sum().round(4).to_dict() == {"A": 106200.3705, "B": 106197.672, "C": 110568.7065}


def test_german_bakery_datum_warengruppe_umsatz(tmp_path: Path) -> None:
    result = run("sales", DATA / "sales/baeckerei_umsatz.csv", tmp_path / "out")
    s = result.summary
    # df["Umsatz"].sum(), df["Datum"].nunique(), df["Warengruppe"].nunique()
    assert s["revenue"] == pytest.approx(87454.359562, abs=0.01)
    assert (s["days"], s["products"], s["rejected_rows"]) == (89, 6, 0)
    # df.groupby("Warengruppe")["Umsatz"].sum().idxmax() == 2 (31836.958167)
    assert s["top_products"]["2"] == pytest.approx(31836.96, abs=0.01)


def test_spanish_locale_retail_export_decimal_commas_and_tickets(tmp_path: Path) -> None:
    result = run("sales", DATA / "sales/online_retail_es.csv", tmp_path / "out")
    s = result.summary
    # read_csv(sep=";", decimal=","): (Quantity * UnitPrice).sum(); InvoiceNo.nunique();
    # StockCode.nunique(); Quantity.sum(); InvoiceDate (%d/%m/%Y) spans 4 days in Dec 2010
    assert s["revenue"] == pytest.approx(45356.14, abs=0.01)
    assert (s["tickets"], s["products"], s["units"]) == (402, 1142, 19344)
    assert (s["first_day"], s["last_day"], s["days"]) == ("2010-12-01", "2010-12-05", 4)
    assert s["encoding"] == "utf-8-sig"


def test_kaggle_no_show_export_is_a_date_only_schedule(tmp_path: Path) -> None:
    result = run("appointments", DATA / "appointments/kaggle_noshow.csv", tmp_path / "out")
    s = result.summary
    # len(df); (df["No-show"] == "Yes").sum(); AppointmentDay is always T00:00:00Z
    assert (s["bookings"], s["no_shows"], s["attended"]) == (1000, 171, 829)
    assert s["schedule"] == "date-only"
    assert s["conflicts"] == {"professional": 0, "patient": 0}  # no times, no time clashes


def test_brazilian_clinic_export_statuses(tmp_path: Path) -> None:
    result = run("appointments", DATA / "appointments/ebrain_agendamento.csv", tmp_path / "out")
    s = result.summary
    # 5 rows, one with 30 of 33 fields; statuses Agendado, Atendido, Em Atendimento, Não chegou
    assert (s["bookings"], s["rejected_rows"]) == (4, 1)
    assert (s["attended"], s["no_shows"], s["cancellations"]) == (1, 1, 0)
    bookings = pd.read_parquet(tmp_path / "out/appointments.parquet")
    assert str(bookings["start"].min()) == "2020-10-29 17:00:00+00:00"  # hora_inicio


def test_date_and_12_hour_time_slot_with_show_up_flag(tmp_path: Path) -> None:
    path = DATA / "appointments/health_track_clinic.csv"
    result = run("appointments", path, tmp_path / "out")
    s = result.summary
    # (~df["show_up_status"]).sum(); df["date"].nunique(); overlapping pairs of one patient's
    # [date + time_slot, + scheduled_duration) intervals, counted pair by pair: 13
    assert (s["bookings"], s["no_shows"], s["days"]) == (1000, 43, 30)
    assert s["conflicts"]["patient"] == 13


def test_salon_booking_export_staff_us_dates_and_12_hour_clock(tmp_path: Path) -> None:
    result = run("appointments", DATA / "appointments/salon_future_bookings.csv", tmp_path / "out")
    s = result.summary
    # start = pd.to_datetime(df.Date + " " + df.Time, format="%m/%d/%Y %I:%M:%S %p") (it agrees
    # with TimeInt, minutes since midnight); start.dt.date.nunique(); df.Staff.nunique()
    assert (s["bookings"], s["rejected_rows"], s["days"], s["professionals"]) == (1000, 0, 71, 6)
    # per staff, sorted by start, bookings starting before an earlier one's 30-minute slot ends
    assert s["conflicts"] == {"professional": 24, "patient": 0}
    bookings = pd.read_parquet(tmp_path / "out/appointments.parquet")
    assert str(bookings["start"].min()) == "2018-03-14 15:50:00+00:00"  # "3:50:00 PM"
    assert str(bookings["start"].max()) == "2018-06-13 18:30:00+00:00"
    daily = pd.read_parquet(tmp_path / "out/daily_professional.parquet")
    per_day = daily.groupby(daily["day"].astype(str))["bookings"].sum()
    # start.dt.date.value_counts(): the three busiest days
    assert per_day[["2018-05-31", "2018-06-02", "2018-05-29"]].tolist() == [34, 32, 31]
    # df.Staff.value_counts()
    per_staff = daily.groupby("professional_id")["bookings"].sum().to_dict()
    assert per_staff == {"JJ": 399, "BECKY": 198, "SINEAD": 177, "JOANNE": 113, "KELLY": 101,
                         "HOUSE": 12}  # fmt: skip


@pytest.mark.parametrize(
    ("name", "readings", "series", "first", "device"),
    [
        # 600 rows x 8 sensors (the anomaly/changepoint label columns are not readings)
        ("skab_valve1_0.csv", 4800, 8, "2020-03-09 10:14:33+00:00", "skab_valve1_0"),
        # 720 rows x (pedestrians count, temperature); "2020-05-06 00:00:00 +0200" first
        ("kiel_holstenstrasse_hour.csv", 1440, 2, "2020-05-05 22:00:00+00:00", None),
        # 2,000 rows x 7 readings; Date "16/12/2006" + Time "17:24:00"
        ("household_power_consumption.txt", 14000, 7, "2006-12-16 17:24:00+00:00", None),
    ],
)
def test_sensor_files_read_whole(
    tmp_path: Path, name: str, readings: int, series: int, first: str, device: str | None
) -> None:
    result = run("sensors", DATA / "sensors" / name, tmp_path / "out")
    s = result.summary
    assert (s["readings"], s["series"], s["rejected_rows"]) == (readings, series, 0)
    assert s["first_reading"] == first
    stats = pd.read_parquet(tmp_path / "out/device_stats.parquet")
    assert stats["device"].nunique() == 1
    if device:
        assert stats["device"].iloc[0] == device  # no device column: named after the key


def test_sensor_means_match_pandas(tmp_path: Path) -> None:
    run("sensors", DATA / "sensors/kiel_holstenstrasse_hour.csv", tmp_path / "kiel")
    run("sensors", DATA / "sensors/household_power_consumption.txt", tmp_path / "power")
    kiel = pd.read_parquet(tmp_path / "kiel/device_stats.parquet").set_index("metric")
    power = pd.read_parquet(tmp_path / "power/device_stats.parquet").set_index("metric")
    # df["pedestrians count"].mean(); df["Voltage"].mean(); df["Global_active_power"].max()
    assert kiel.loc["pedestrians count", "mean"] == pytest.approx(523.25)
    assert kiel["device"].iloc[0] == "Holstenstraße (Mitte), Kiel"
    assert power.loc["Voltage", "mean"] == pytest.approx(239.706975)
    assert power.loc["Global_active_power", "max"] == pytest.approx(7.706)
