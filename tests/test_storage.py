from __future__ import annotations

import pytest
from s3worker.contract import MAX_KEY_BYTES, Layout
from s3worker.errors import KeyTooLongError


def test_results_follow_the_contract_paths():
    assert Layout("").manifest_key("a/b.csv") == "a/b.csv/_manifest.json"
    assert Layout("results").result_key("a/b.csv", "summary.json") == "results/a/b.csv/summary.json"
    assert Layout("results").error_key("a/b.csv") == "results/_errors/a/b.csv.json"


def test_result_keys_over_the_s3_limit_are_refused():
    key = "k/" + "z" * 1010
    with pytest.raises(KeyTooLongError, match=r"S3 allows 1024"):
        Layout("").manifest_key(key)


def test_error_key_falls_back_to_a_hash_when_too_long():
    key = "k/" + "z" * 1020
    report = Layout("").error_key(key)
    assert report.startswith("_errors/_long-keys/")
    assert len(report.encode()) <= MAX_KEY_BYTES
    assert report == Layout("").error_key(key)  # stable
