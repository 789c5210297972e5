"""Log lines to request fields: what every format's lines give, normalised the same way."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from s3worker.processors.applogs.logparse import (
    REQUEST_TIME,
    Fields,
    _forwarded_or,
    _request_time,
    iso_times,
    parse_lines,
    url_decoded,
)

OWNER = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"


def fields(fmt: str, lines: list[str], w3c: list[str] | None = None) -> dict[str, list[Any]]:
    f: Fields = parse_lines(fmt, pa.array(lines, pa.string()), w3c or ())
    out: dict[str, list[Any]] = {
        name: getattr(f, name).to_pylist()
        for name in ("status", "method", "path", "client", "agent")
    }
    out["time"] = [None if np.isnat(t) else str(t) for t in f.time]
    out["latency_ms"] = [None if np.isnan(v) else round(float(v), 6) for v in f.latency_ms]
    out["unparsed"] = f.unparsed.tolist()
    return out


def test_combined_and_common_lines_with_what_nginx_appends() -> None:
    got = fields("clf", [
        '10.0.0.2 - frank [17/May/2015:10:05:04 -0700] "POST /login HTTP/1.0" 302 0 "-" '
        '"curl/8" "198.51.100.7, 10.0.0.9" 0.004',
        '10.0.0.3 - - [17/May/2015:10:05:06 +0000] "GET /x HTTP/1.1" 500 12',
        '10.0.0.4 - - [17/May/2015:10:05:07 +0000] "GET /a HTTP/1.1" 200 1 "-" "A" 1500',
        '10.0.0.8 - - [17/May/2015:10:05:11 +0000] "GET http://h:80/p?q HTTP/1.1" - 1 "-" "-" '
        "rt=0.250",
        '10.0.0.5 - - [17/May/2015:10:05:08 +0000] "-" 408 0 "-" "-"',
        "garbage",
    ])  # fmt: skip
    assert got["time"][:2] == ["2015-05-17T17:05:04.000000000", "2015-05-17T10:05:06.000000000"]
    assert got["time"][-1] is None
    assert got["status"] == ["302", "500", "200", "0", "408", None]  # `-`: no response sent
    assert got["method"] == ["POST", "GET", "GET", "GET", "-", "-"]
    assert got["path"] == ["/login", "/x", "/a", "/p?q", "-", "-"]  # no scheme and host
    # the first X-Forwarded-For address stands for the client behind a proxy
    assert got["client"] == ["198.51.100.7", "10.0.0.3", "10.0.0.4", "10.0.0.8", "10.0.0.5", None]
    assert got["agent"][:3] == ["curl/8", "", "A"]
    # $request_time in seconds (with a dot), Apache's %D in microseconds (an integer)
    assert got["latency_ms"] == [4.0, None, 1.5, 250.0, None, None]
    assert got["unparsed"] == [False] * 5 + [True]


def test_alb_latency_is_the_sum_of_its_phases_unless_one_is_minus_one() -> None:
    got = fields("alb", [
        "https 2018-07-02T22:23:00.186641Z app/my-lb/50dc 192.168.131.39:2817 10.0.0.1:80 "
        '0.086 0.048 0.037 200 200 0 57 "GET https://www.example.com:443/a?b HTTP/1.1" '
        '"curl/7.46.0" ECDHE TLSv1.2 arn "Root=1"',
        "http 2018-07-02T22:23:01.5Z app/my-lb/50dc 192.168.131.39:2817 - -1 -1 -1 503 - 34 366 "
        '"GET http://www.example.com:80/ HTTP/1.1" "-" - -',
        "h2 2018-07-02T22:23:02Z app/my-lb/50dc 10.1.2.3:1 10.0.0.1:80 0.001 -1 0.000 502 - 1 2 "
        '"GET https://www.example.com:443/b HTTP/2.0" "curl/8" - -',
    ])  # fmt: skip
    assert got["time"][:2] == ["2018-07-02T22:23:00.186641000", "2018-07-02T22:23:01.500000000"]
    assert got["latency_ms"] == [171.0, None, None]  # the target dropped the third
    assert got["client"] == ["192.168.131.39", "192.168.131.39", "10.1.2.3"]  # without port
    assert got["path"] == ["/a?b", "/", "/b"]
    assert (got["status"], got["method"]) == (["200", "503", "502"], ["GET", "GET", "GET"])
    assert got["unparsed"] == [False, False, False]


def test_s3_lines_without_a_request_take_the_operations_verb_and_the_key() -> None:
    got = fields("s3", [
        f"{OWNER} mybucket [06/Feb/2014:00:00:38 +0000] 192.0.2.3 {OWNER} 3E57 "
        'REST.GET.VERSIONING - "GET /mybucket?versioning HTTP/1.1" 200 - 113 - 7 - "-" '
        '"S3Console/0.4" -',
        f"{OWNER} mybucket [06/Feb/2014:00:01:00 +0000] - svc BBBB REST.COPY.OBJECT_GET "
        "photos/a.jpg - 200 - - 1024 12 - - - -",
        "not an s3 line",
    ])  # fmt: skip
    assert got["method"][:2] == ["GET", "COPY"]
    assert got["path"][:2] == ["/mybucket?versioning", "photos/a.jpg"]
    assert got["client"] == ["192.0.2.3", None, None]  # `-`: none
    assert got["latency_ms"] == [7.0, 12.0, None]  # total time, in milliseconds
    assert got["time"][1] == "2014-02-06T00:01:00.000000000"
    assert got["unparsed"] == [False, False, True]


def test_cloudfront_time_taken_in_seconds_encoded_agents_and_status_000() -> None:
    header = "date time x-edge-location c-ip cs-method cs-uri-stem sc-status cs(User-Agent) "
    header += "time-taken x-forwarded-for"
    got = fields("w3c", [
        "2016-08-15\t06:04:29\tSIN2\t122.164.17.87\tGET\t/a\t200\tMozilla/5.0%2520(Mac)\t0.125\t-",
        "2016-08-15\t06:04:30\tSIN2\t122.164.17.87\tGET\t/favicon.ico\t000\tcurl%2F8\t0.002\t"
        "203.0.113.9",
        "short\tline",
    ], header.split())  # fmt: skip
    assert got["time"][:2] == ["2016-08-15T06:04:29.000000000", "2016-08-15T06:04:30.000000000"]
    assert got["status"] == ["200", "0", None]
    assert got["agent"] == ["Mozilla/5.0 (Mac)", "curl/8", None]  # decoded twice, then once
    assert got["client"] == ["122.164.17.87", "203.0.113.9", None]
    assert got["latency_ms"] == [125.0, 2.0, None]
    assert got["path"] == ["/a", "/favicon.ico", "-"]
    assert got["unparsed"] == [False, False, True]


def test_iis_time_taken_in_ms_plus_for_space_and_a_field_it_does_not_log() -> None:
    header = ["date", "time", "c-ip", "cs-uri-stem", "sc-status", "cs(User-Agent)"]
    header.append("time-taken")
    line = "2016-01-10 00:07:26 188.68.224.62 /httptest.php 404 Mozilla/5.0+(Windows+NT) 591"
    got = fields("w3c", [line], header)
    assert got["agent"] == ["Mozilla/5.0 (Windows NT)"]
    assert got["latency_ms"] == [591.0]
    assert got["method"] == [None]  # no cs-method in this log
    assert (got["status"], got["path"], got["client"]) == (["404"], ["/httptest.php"],
                                                           ["188.68.224.62"])  # fmt: skip


def test_a_chunk_of_empty_lines_is_all_unparsed() -> None:
    got = fields("clf", ["", ""])
    assert got["unparsed"] == [True, True]
    assert got["time"] == [None, None]


def test_iso_times_with_offsets_without_and_in_other_shapes_are_utc() -> None:
    times = iso_times(pa.chunked_array([[
        "2024-06-03T10:00:00Z", "2024-06-03T12:00:00+02:00", "2024-06-03 10:00:00.5",
        "2024/06/03 10:00", "nope", None,
    ]]))  # fmt: skip
    assert times.dtype == np.dtype("datetime64[ns]")
    assert [None if np.isnat(t) else str(t)[:23] for t in times] == [
        "2024-06-03T10:00:00.000",
        "2024-06-03T10:00:00.000",
        "2024-06-03T10:00:00.500",
        "2024-06-03T10:00:00.000",
        None,
        None,
    ]
    every_one_zoned = iso_times(pa.chunked_array([["2024-06-03T09:00:00-01:00"]]))
    assert str(every_one_zoned[0]) == "2024-06-03T10:00:00.000000000"


def test_url_decoding_of_user_agents() -> None:
    agents = pa.chunked_array([["a%2520b", "a+b%20c", None, "plain"], ["a%2520b"]])
    assert url_decoded(agents).to_pylist() == ["a b", "a+b c", None, "plain", "a b"]
    assert url_decoded(pa.chunked_array([["a+b"]]), plus=True).to_pylist() == ["a b"]
    # at most twice: what a third encoding left stays encoded
    assert url_decoded(pa.chunked_array([["%252520"]])).to_pylist() == ["%20"]


RESTS = [" 0.049", " 12", "", ' "-" 0.250', " rt=0.250 uct=0.001", " 1.5 0.2", " .5", " 5.", " 1e3"]


def test_request_time_is_what_the_full_pattern_extracts() -> None:
    rest = pa.array(RESTS)
    full = pc.struct_field(pc.extract_regex(rest, REQUEST_TIME), "rtime")
    assert _request_time(rest).to_pylist() == full.to_pylist()
    assert _request_time(rest).to_pylist()[:5] == ["0.049", "12", None, "0.250", "0.250"]


def test_no_forwarded_for_leaves_the_peer_address() -> None:
    clients = pa.array(["10.0.0.1", "-", "10.0.0.2"])
    none = pa.nulls(3, pa.string())
    assert _forwarded_or(none, clients).to_pylist() == ["10.0.0.1", None, "10.0.0.2"]
    some = pa.array([None, "203.0.113.9, 10.0.0.9", None], pa.string())
    assert _forwarded_or(some, clients).to_pylist() == ["10.0.0.1", "203.0.113.9", "10.0.0.2"]
