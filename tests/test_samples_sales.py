"""samples/sales.py: point-of-sale lines with planted malformed rows and the valid revenue."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from s3worker.samples import sales
from s3worker.samples.writing import Truth, write_sample
from test_samples_writing import assert_reproducible


def written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: int = 30_000, seed: int = 3
) -> tuple[pd.DataFrame, Truth]:
    """A file of two blocks (5,000 tickets, about 15,000 lines each): planted per block."""
    monkeypatch.setattr(sales, "BLOCK_TICKETS", 5_000)
    out = tmp_path / "sales.csv"
    truth = write_sample("sales", rows, out, seed=seed)
    frame = pd.read_csv(out, dtype=str, keep_default_na=False).head(truth.rows)
    return frame, truth


def block_sizes(frame: pd.DataFrame) -> list[int]:
    """Lines per block: a block is 5,000 tickets (ticket ids count from T10000000)."""
    block = (frame["ticket_id"].str[1:].astype(int) - 10_000_000) // 5_000
    return block.value_counts(sort=False).sort_index().tolist()


def test_same_seed_same_file(tmp_path: Path) -> None:
    assert_reproducible(tmp_path, "sales")


def test_each_malformed_row_carries_one_spoiled_field_in_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame, truth = written(tmp_path, monkeypatch)
    bad = truth.planted["malformed"]
    assert len(bad) == sum(max(4, n // 2_500) for n in block_sizes(frame))
    assert bad == sorted(bad)
    assert bad[-1] > truth.rows // 2  # record numbers count across blocks
    for row in bad:
        spoiled = [c for c, value in sales.SPOIL if frame.loc[row, c] == (value or "")]
        assert len(spoiled) == 1, (row, spoiled)
    kinds = [c for row in bad for c, value in sales.SPOIL if frame.loc[row, c] == (value or "")]
    assert set(kinds) == {c for c, _ in sales.SPOIL}  # each kind of damage, in turn
    good = frame.drop(index=bad)
    assert pd.to_datetime(good["date"], format="%Y-%m-%d").notna().all()
    assert good["product"].str.startswith("SKU-").all()
    assert pd.to_numeric(good["quantity"]).between(1, 4).all()


def test_the_truth_is_the_revenue_of_the_valid_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame, truth = written(tmp_path, monkeypatch)
    good = frame.drop(index=truth.planted["malformed"])
    (revenue,) = truth.planted["revenue"]
    assert pd.to_numeric(good["revenue"]).sum() == pytest.approx(revenue, abs=0.01)
    all_lines = pd.to_numeric(frame["revenue"]).sum()
    assert all_lines > revenue  # the malformed lines' revenue is left out


def test_a_tickets_lines_are_together_and_days_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame, truth = written(tmp_path, monkeypatch)
    tickets = frame["ticket_id"]
    assert (tickets != tickets.shift()).sum() == tickets.nunique()  # one run per ticket
    dates = frame["date"].drop(index=truth.planted["malformed"])
    assert dates.is_monotonic_increasing
    assert dates.iloc[0] == "2024-01-01"
    revenue = pd.to_numeric(frame["revenue"])
    qty, price = pd.to_numeric(frame["quantity"], errors="coerce"), frame["unit_price"]
    ok = qty.notna() & price.str.fullmatch(r"[\d.]+")
    assert (revenue[ok] - qty[ok] * pd.to_numeric(price[ok])).abs().max() < 0.006


def test_broken_lines_suit_the_format() -> None:
    assert sales.broken_lines("csv") == ["2024-01-01,S100,T1", "totally,broken"]
    assert sales.broken_lines("jsonl") == ["{oops"]
