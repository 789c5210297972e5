"""The log formats applogs reads: their names, their signatures and their line patterns."""

from __future__ import annotations

import re

import pytest
from s3worker.processors.applogs.logformats import (
    ALB,
    CLF,
    FORMATS,
    S3,
    canonical_format,
    detect_line_format,
    w3c_fields,
    w3c_pattern,
    w3c_separator,
)

COMBINED = (
    '83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /a.png HTTP/1.1" 200 203023 '
    '"http://semicomplete.com/" "Mozilla/5.0 (Macintosh)"'
)
COMMON = '10.0.0.3 - frank [17/May/2015:10:05:06 -0700] "POST /login HTTP/1.0" 302 -'
ALB_LINE = (
    "https 2018-07-02T22:23:00.186641Z app/my-lb/50dc6c495c0c9188 192.168.131.39:2817 "
    '10.0.0.1:80 0.086 0.048 0.037 200 200 0 57 "GET https://www.example.com:443/ HTTP/1.1" '
    '"curl/7.46.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:x "Root=1"'
)
OWNER = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"
S3_LINE = (
    f"{OWNER} mybucket [06/Feb/2014:00:00:38 +0000] 192.0.2.3 {OWNER} 3E57427F3EXAMPLE "
    'REST.GET.VERSIONING - "GET /mybucket?versioning HTTP/1.1" 200 - 113 - 7 - "-" '
    '"S3Console/0.4" -'
)
CLOUDFRONT_FIELDS = "#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(User-Agent)"


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("clf", "clf"),
        ("Combined", "clf"),
        ("nginx", "clf"),
        ("ELB", "alb"),
        ("s3-access", "s3"),
        ("CloudFront", "w3c"),
        ("iis", "w3c"),
        (" JSON-L ", "jsonl"),
        ("csv", "csv"),
    ],
)
def test_format_names_and_their_aliases(name: str, canonical: str) -> None:
    assert canonical_format(name) == canonical


def test_an_unknown_format_name_lists_every_accepted_one() -> None:
    with pytest.raises(ValueError, match=r"unknown log format 'syslog'; accepted: ") as err:
        canonical_format("syslog")
    message = str(err.value)
    assert all(name in message for name in (*FORMATS, "combined", "cloudfront"))


@pytest.mark.parametrize(
    ("lines", "fmt"),
    [
        ([COMBINED, COMMON], "clf"),
        ([ALB_LINE] * 3, "alb"),
        ([S3_LINE] * 2, "s3"),
        (["#Version: 1.0", CLOUDFRONT_FIELDS, "2016-08-15\t06:04:29\tSIN2"], "w3c"),
    ],
)
def test_each_line_format_is_told_by_its_signature(lines: list[str], fmt: str) -> None:
    assert detect_line_format("\n".join(lines) + "\n") == fmt


def test_an_s3_line_needs_a_canonical_owner_id_and_a_bom_is_ignored() -> None:
    # The S3 signature is the 64-hex bucket owner; without it the line is no known format
    assert detect_line_format(S3_LINE.replace(OWNER, "someone", 1)) is None
    assert detect_line_format("\ufeff" + COMBINED) == "clf"


def test_half_the_lines_decide_and_comments_and_blanks_do_not_count() -> None:
    assert detect_line_format("\n".join([COMBINED, "garbage"])) == "clf"
    assert detect_line_format("\n".join([COMBINED, "garbage", "more garbage"])) is None
    assert detect_line_format("\n".join(["# a comment", "", "   ", COMBINED])) == "clf"
    headers = ["#Version: 1.0", "#Date: x", "#Remark"]
    assert detect_line_format("\n".join([*headers, COMBINED])) == "clf"
    assert detect_line_format("# only comments\n\n") is None
    assert detect_line_format("") is None


def test_a_fields_header_after_the_first_ten_lines_is_not_w3c() -> None:
    late = "\n".join(["#Remark"] * 10 + [CLOUDFRONT_FIELDS])
    assert detect_line_format(late) is None
    assert detect_line_format("\n".join(["#Remark"] * 9 + [CLOUDFRONT_FIELDS])) == "w3c"


def test_the_line_patterns_give_each_field() -> None:
    combined = re.match(CLF, COMBINED.replace("Mozilla/5.0", 'Mozilla \\"5\\"') + " 0.004")
    assert combined is not None
    assert combined["client"] == "83.149.9.216"
    assert combined["time"] == "17/May/2015:10:05:03 +0000"
    assert combined["agent"] == 'Mozilla \\"5\\" (Macintosh)'  # an escaped quote stays inside
    assert combined["rest"] == " 0.004"
    common = re.match(CLF, COMMON)
    assert common is not None
    assert (common["status"], common["bytes"], common["agent"]) == ("302", "-", None)
    alb = re.match(ALB, ALB_LINE)
    assert alb is not None
    assert (alb["client"], alb["status"], alb["bytes"]) == ("192.168.131.39", "200", "57")
    s3 = re.match(S3, S3_LINE)
    assert s3 is not None
    assert (s3["operation"], s3["request"], s3["total_time"]) == (
        "REST.GET.VERSIONING",
        "GET /mybucket?versioning HTTP/1.1",
        "7",
    )


def test_w3c_fields_and_the_pattern_they_make() -> None:
    fields = w3c_fields(CLOUDFRONT_FIELDS)
    assert fields == ["date", "time", "x-edge-location", "sc-bytes", "c-ip", "cs-method",
                      "cs(User-Agent)"]  # fmt: skip
    pattern = re.compile(w3c_pattern(fields[:3], "\t"))
    full = pattern.match("2016-08-15\t06:04:29\tSIN2\textra\tfields")
    assert full is not None
    assert [full["f0"], full["f1"], full["f2"]] == ["2016-08-15", "06:04:29", "SIN2"]
    assert pattern.match("2016-08-15 06:04:29 SIN2") is None  # spaces are not its separator
    assert pattern.match("2016-08-15\t06:04:29") is None  # a field short: not the format
    iis = re.compile(w3c_pattern(["date", "time", "cs(User-Agent)"], " "))
    line = iis.match("2016-01-10 00:07:26 Mozilla/5.0+(Windows)")
    assert line is not None
    assert line["f2"] == "Mozilla/5.0+(Windows)"


def test_the_separator_is_tabs_for_cloudfront_and_spaces_for_iis() -> None:
    assert w3c_separator(["#Version: 1.0", "2016-08-15\t06:04:29"]) == "\t"
    assert w3c_separator(["#Fields: date time", "", "2016-01-10 00:07:26"]) == " "
    assert w3c_separator(["#Fields: date time"]) == "\t"  # no data line: CloudFront's
