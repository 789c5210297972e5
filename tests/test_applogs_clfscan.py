"""CLF lines cut by their bytes give the fields the pattern gives, line for line."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from s3worker.processors.applogs import clfscan
from s3worker.processors.applogs.logparse import _request, clf_fields, clf_parts

AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0"
PLAIN = [
    f'10.0.0.1 - - [17/May/2015:10:05:03 +0000] "GET /a?b=1 HTTP/1.1" 200 512 "-" "{AGENT}"',
    '10.0.0.2 - frank [17/May/2015:10:05:04 -0700] "POST /login HTTP/1.0" 302 0 "-" "curl/8"'
    ' "198.51.100.7, 10.0.0.9" 0.004',
    '::1 - - [17/May/2015:10:05:05 +0000] "HEAD / HTTP/1.1" 404 - "https://x.org/" "" rt=1.5',
    '10.0.0.3 - - [17/May/2015:10:05:06 +0000] "get /x#frag HTTP/1.1" 500 12',  # Common
    '10.0.0.4 - - [17/May/2015:10:05:07 +0000] "GET /ünï HTTP/1.1" 200 1 "-" "Bot ünï/1.0"',
    '10.0.0.21 - - [17/May/2015:10:05:24 +0000] "G3T /a HTTP/1.1" 200 1 "-" "-"',  # `-` verb
]
ODD = [
    "",
    "   ",
    "# a comment",
    "not a log line at all",
    '10.0.0.5 - - [17/May/2015:10:05:08 +0000] "-" 408 0 "-" "-"',  # no request
    '10.0.0.6 - - [17/May/2015:10:05:09 +0000] "GET /a" 200 1 "-" "-"',  # one space
    '10.0.0.7 - - [17/May/2015:10:05:10 +0000] "OPTIONS * HTTP/1.1" 200 1 "-" "-"',
    '10.0.0.8 - - [17/May/2015:10:05:11 +0000] "GET http://h:80/p?q HTTP/1.1" 200 1 "-" "-"',
    '10.0.0.9 - - [17/May/2015:10:05:12 +0000] "GET /a HTTP/1.1" - 1 "-" "-"',  # - status
    '10.0.0.10 - - [17/May/2015:10:05:13 +0000] "GET /a \\"b\\" HTTP/1.1" 200 1 "-" "-"',
    '10.0.0.11 - - [17/May/2015:10:05:14 +0000] "GET /a HTTP/1.1" 200 1 "-" "A\\"gent"',
    '10.0.0.12 - - [17/May/2015:10:05:15 +0000] "GET /a HTTP/1.1" 200 1 "-"\t"tab"',
    '10.0.0.13 - - [17/May/2015:10:05:16 +0000] "GET  /a HTTP/1.1" 200 1 "-" "-"',
    '10.0.0.14 - - [17/May]2015:10:05:17 +0000] "GET /a HTTP/1.1" 200 1 "-" "-"',
    '10.0.0.15 - - [17/May/2015:10:05:18] "GET /a HTTP/1.1" 200 1 "-" "-"',  # no zone
    '10.0.0.16 - - [17/May/2015:10:05:19 +0000] "GET /a HTTP/1.1" 2000 1 "-" "-"',
    '10.0.0.17 - - [17/May/2015:10:05:20 +0000] "GET /a HTTP/1.1" 200 1 2 "-" "-"',
    '10.0.0.18 - - [17/May/2015:10:05:21 +0000] "GET /a HTTP/1.1" 200 1 ',  # Common, space
    '10.0.0.19 - - [17/May/2015:10:05:22 +0000] "GET /a HTTP/1.1" 200 1"-" "-"',
    '10.0.0.20 extra - - [17/May/2015:10:05:23 +0000] "GET /a HTTP/1.1" 200 1 "-" "-"',
]


def by_pattern(lines: pa.Array) -> tuple[dict[str, list[object]], list[bool]]:
    """What every line gives through the CLF pattern alone (the reference)."""
    parts = clf_parts(lines)
    method, path = _request(pc.struct_field(parts, "request"))
    fields = {n: pc.struct_field(parts, n) for n in ("client", "time", "status", "agent", "rest")}
    fields |= {"method": method, "path": path}
    return {k: v.to_pylist() for k, v in fields.items()}, parts.is_null().to_pylist()


@pytest.mark.parametrize("order", ["as written", "shuffled"])
def test_every_line_gets_the_fields_the_pattern_gives(order: str) -> None:
    texts = PLAIN * 3 + ODD
    if order == "shuffled":
        texts = [texts[i] for i in np.random.default_rng(5).permutation(len(texts))]
    lines = pa.array(texts, pa.string())
    fields, unparsed = clf_fields(lines)
    expected, expected_unparsed = by_pattern(lines)
    assert unparsed.tolist() == expected_unparsed
    for name, values in expected.items():
        assert fields[name].to_pylist() == values, name


def test_mutated_lines_get_the_fields_the_pattern_gives() -> None:
    # given: lines cut short, or with quotes, spaces, brackets or backslashes put in, so
    # that marks are missing or land near the end of the slice, where positions run out
    rng = np.random.default_rng(11)
    marks = list(' "\\[]-/09aZ\t')

    def mutated(line: str) -> str:
        chars = list(line)
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(0, len(chars) + 1))
            if rng.random() < 0.3:
                chars = chars[:i]
            else:
                chars.insert(i, str(rng.choice(marks)))
        return "".join(chars)

    for _ in range(200):
        texts = [mutated(PLAIN[int(i)]) for i in rng.integers(0, len(PLAIN), 8)]
        lines = pa.array(texts, pa.string())
        # when
        fields, unparsed = clf_fields(lines)
        # then
        expected, expected_unparsed = by_pattern(lines)
        assert unparsed.tolist() == expected_unparsed, texts
        for name, values in expected.items():
            assert fields[name].to_pylist() == values, (name, texts)


def test_plain_lines_are_cut_by_bytes_and_the_others_left_to_the_pattern() -> None:
    lines = pa.array(PLAIN + ODD, pa.string())
    _, plain = clfscan.scan(lines)
    assert plain.tolist() == [True] * len(PLAIN) + [False] * len(ODD)


def test_a_slice_of_a_larger_array_is_cut_where_it_lies() -> None:
    lines = pa.array(ODD + PLAIN + ODD, pa.string()).slice(len(ODD), len(PLAIN))
    fields, plain = clfscan.scan(lines)
    assert plain.all()
    assert fields["client"].to_pylist()[:5] == [
        "10.0.0.1",
        "10.0.0.2",
        "::1",
        "10.0.0.3",
        "10.0.0.4",
    ]
    assert fields["target"].to_pylist() == ["/a?b=1", "/login", "/", "/x#frag", "/ünï", "/a"]
    assert fields["agent"].to_pylist() == [AGENT, "curl/8", "", "", "Bot ünï/1.0", "-"]


def test_spans_take_each_range_of_the_buffer() -> None:
    buffer = pa.py_buffer(b"alpha beta gamma")
    out = clfscan.spans(buffer, np.array([0, 6, 11, 16]), np.array([5, 10, 16, 16]))
    assert out.to_pylist() == ["alpha", "beta", "gamma", ""]
