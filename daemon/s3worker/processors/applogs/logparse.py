"""Access-log lines to request fields, vectorised: one RE2 pass per chunk, no Python loop.

`pyarrow.compute.extract_regex` splits a whole chunk of lines with the format's pattern
(see logformats), then the fields are normalised to what every format shares: time,
status, method, path, client, user agent and latency in milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from s3worker.processors.applogs import clfscan
from s3worker.processors.applogs.logformats import (
    CLF,
    CLF_HEAD,
    CLF_MIDDLE,
    LINE_PATTERNS,
    w3c_pattern,
)
from s3worker.processors.tabular.columns import BoolArray, FloatArray, TimeArray, to_float, to_time

CLF_TIME = "%d/%b/%Y:%H:%M:%S %z"  # [17/May/2015:10:05:03 +0000], Apache and S3
# "GET /a?b HTTP/1.1", or ALB's "GET https://host:443/a?b HTTP/1.1": the path without host.
ABSOLUTE = r"^[A-Za-z][A-Za-z0-9+.-]*://[^/\s]*"
# nginx after the user agent: "$http_x_forwarded_for", then $request_time (or rt=...).
FORWARDED = r'^ "(?P<xff>[^"]*)"'
REQUEST_TIME = r'(?:^| )(?:rt=|request_time=)?"?(?P<rtime>\d+(?:\.\d+)?)"?(?: |$)'
# What REQUEST_TIME finds where $request_time is all there is (nginx "main" + it), anchored:
# RE2 then tries one position a line instead of every one (3.5 ms against 8 per 45k lines).
ONLY_REQUEST_TIME = r"^ (?P<rtime>\d+(?:\.\d+)?)$"
FIRST_ADDRESS = r"^\s*(?P<ip>[0-9A-Fa-f.:]+)\s*(?:,|$)"
ISO = r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d{1,9})?"
ISO_OFFSET = ISO + r"(?:Z|[+-]\d\d:?\d\d)$"
NO_RESPONSE = "0"  # CloudFront's 000 and a `-` status: the client left before a response


@dataclass
class Fields:
    """A chunk's requests: string columns, times, latency (ms) and lines not in the format."""

    time: TimeArray
    status: pa.ChunkedArray
    method: pa.ChunkedArray
    path: pa.ChunkedArray
    client: pa.ChunkedArray
    agent: pa.ChunkedArray
    latency_ms: FloatArray
    unparsed: BoolArray


def parse_lines(fmt: str, lines: pa.Array, w3c: Sequence[str] = ()) -> Fields:
    """Lines of `fmt` (`clf`, `alb`, `s3` or `w3c` with its `#Fields`) as request fields."""
    if fmt == "w3c":
        return _w3c(lines, w3c)
    if fmt == "clf":
        return _clf(*clf_fields(lines))
    parts = pc.extract_regex(lines, LINE_PATTERNS[fmt])
    return {"alb": _alb, "s3": _s3}[fmt](parts, _nulls(parts))


def clf_fields(lines: pa.Array) -> tuple[dict[str, pa.Array], BoolArray]:
    """Client, time, method, path, status, agent and rest of CLF lines, and the lines that
    are not CLF. Plain lines are cut by their bytes (clfscan); the others by `clf_parts`."""
    cut, plain = clfscan.scan(lines)
    method, path = _split_request(cut.pop("method"), cut.pop("target"))
    fields = {**cut, "method": method, "path": path}
    unparsed = np.zeros(len(lines), dtype=bool)
    if plain.all():
        return fields, unparsed
    odd = ~plain
    parts = clf_parts(lines.filter(pa.array(odd)))
    unparsed[odd] = _nulls(parts)
    method, path = _request(pc.struct_field(parts, "request"))
    slow = {name: pc.struct_field(parts, name) for name in ("client", "time", "status")}
    slow |= {name: pc.struct_field(parts, name) for name in ("agent", "rest")}
    slow |= {"method": method.combine_chunks(), "path": path.combine_chunks()}
    mask = pa.array(odd)
    return {k: pc.replace_with_mask(v, mask, slow[k]) for k, v in fields.items()}, unparsed


def clf_parts(lines: pa.Array) -> pa.StructArray:
    """What the CLF pattern extracts, mostly by cutting lines at their quotes (far cheaper
    than RE2's sub-match extraction on whole lines); lines that do not cut cleanly (escaped
    quotes, fields between status and referer, not CLF at all) go through the pattern."""
    fields, clean = _cut_at_quotes(lines)
    if clean.all():
        return pa.StructArray.from_arrays(list(fields.values()), names=list(fields))
    odd = pa.array(~clean)
    slow = pc.extract_regex(lines.filter(odd), CLF)
    merged = [
        pc.replace_with_mask(fields[name].cast(pa.string()), odd, pc.struct_field(slow, name))
        for name in fields
    ]
    valid = clean.copy()
    valid[~clean] = ~_nulls(slow)
    return pa.StructArray.from_arrays(merged, names=list(fields), mask=pa.array(~valid))


def _cut_at_quotes(lines: pa.Array) -> tuple[dict[str, pa.Array], BoolArray]:
    """The CLF fields of every line as its quotes cut it, and which lines cut cleanly."""
    pieces = pc.split_pattern(lines, '"')
    count = np.asarray(pc.list_value_length(pieces).to_numpy(zero_copy_only=False))
    # The first six pieces, null where a line has fewer: head, request, middle, referer,
    # the space between referer and agent, agent.
    first = pc.list_slice(pieces, 0, 6, return_fixed_size_list=True)
    piece = [pc.list_element(first, i) for i in range(6)]
    head = pc.extract_regex(piece[0], CLF_HEAD)
    mid = pc.extract_regex(piece[2], CLF_MIDDLE)
    combined = (count >= 7) & _is(pc.equal(piece[4], " ")) & ~_is(pc.ends_with(piece[3], "\\"))
    common = (count == 3) & ~_is(pc.match_substring(piece[2], "\\"))
    clean = (combined | common) & ~_nulls(head) & ~_nulls(mid)
    clean &= ~_is(pc.ends_with(piece[1], "\\")) & ~_is(pc.ends_with(piece[5], "\\"))
    widest = max(int(count.max()) if len(count) else 0, 7)
    rest = pc.binary_join(pc.list_slice(pieces, 6, widest), '"')
    fields = {
        "client": pc.struct_field(head, "client"),
        "time": pc.struct_field(head, "time"),
        "request": piece[1],
        "status": pc.struct_field(mid, "status"),
        "agent": pc.if_else(pa.array(combined), piece[5], ""),
        "rest": pc.if_else(pa.array(combined), rest, ""),
    }
    return fields, clean


def _is(condition: pa.Array) -> BoolArray:
    return np.asarray(pc.fill_null(condition, False).to_numpy(zero_copy_only=False), dtype=bool)


def _clf(parts: dict[str, pa.Array], unparsed: BoolArray) -> Fields:
    rest = pc.fill_null(parts["rest"], "")
    rtime = _request_time(rest)
    seconds = np.asarray(
        pc.fill_null(pc.match_substring(rtime, "."), False).to_numpy(zero_copy_only=False)
    )
    latency = to_float(_chunked(rtime))
    # $request_time is in seconds (with a dot), Apache's %D in microseconds (an integer).
    latency = np.where(seconds, latency * 1000.0, latency / 1000.0)
    xff = pc.struct_field(pc.extract_regex(rest, FORWARDED), "xff")
    return Fields(
        time=_strptime(parts["time"], CLF_TIME),
        status=_status(parts["status"]),
        method=_chunked(parts["method"]),
        path=_chunked(parts["path"]),
        client=_forwarded_or(xff, parts["client"]),
        agent=_chunked(parts["agent"]),
        latency_ms=latency,
        unparsed=unparsed,
    )


def _request_time(rest: pa.Array) -> pa.Array:
    """The `$request_time` of each line's rest, as REQUEST_TIME extracts it (null if none)."""
    rtime = pc.struct_field(pc.extract_regex(rest, ONLY_REQUEST_TIME), "rtime")
    other = pc.and_(pc.is_null(rtime), pc.not_equal(rest, ""))  # "": Common Log Format
    if not pc.any(other).as_py():
        return rtime
    found = pc.struct_field(pc.extract_regex(rest.filter(other), REQUEST_TIME), "rtime")
    return pc.replace_with_mask(rtime, other, found)


def _alb(parts: pa.StructArray, unparsed: BoolArray) -> Fields:
    method, path = _request(pc.struct_field(parts, "request"))
    phases = [
        to_float(_chunked(pc.struct_field(parts, name)))
        for name in ("request_processing", "target_processing", "response_processing")
    ]
    total = phases[0] + phases[1] + phases[2]
    # -1 in any phase: the request never reached a target, or the target dropped it.
    known = (phases[0] >= 0) & (phases[1] >= 0) & (phases[2] >= 0)
    return Fields(
        time=iso_times(_chunked(pc.struct_field(parts, "time"))),
        status=_status(pc.struct_field(parts, "status")),
        method=method,
        path=path,
        client=_dash_null(pc.struct_field(parts, "client")),
        agent=_chunked(pc.struct_field(parts, "agent")),
        latency_ms=np.where(known, total * 1000.0, np.nan),
        unparsed=unparsed,
    )


def _s3(parts: pa.StructArray, unparsed: BoolArray) -> Fields:
    method, path = _request(pc.struct_field(parts, "request"))
    # No request line (e.g. REST.COPY.OBJECT_GET): the verb of the operation, and the key.
    operation = pc.struct_field(parts, "operation")
    verb = pc.struct_field(pc.extract_regex(operation, r"^[A-Z]+\.(?P<verb>[A-Z]+)"), "verb")
    no_request = pc.equal(pc.fill_null(pc.struct_field(parts, "request"), ""), "")
    method = pc.if_else(no_request, _chunked(verb), method)
    path = pc.if_else(no_request, _chunked(pc.struct_field(parts, "key")), path)
    return Fields(
        time=_strptime(pc.struct_field(parts, "time"), CLF_TIME),
        status=_status(pc.struct_field(parts, "status")),
        method=method,
        path=path,
        client=_dash_null(pc.struct_field(parts, "client")),
        agent=_chunked(pc.struct_field(parts, "agent")),
        latency_ms=to_float(_dash_null(pc.struct_field(parts, "total_time"))),  # milliseconds
        unparsed=unparsed,
    )


def _w3c(lines: pa.Array, fields: Sequence[str]) -> Fields:
    """CloudFront (tabs, time-taken in seconds) or IIS (spaces, time-taken in ms)."""
    separator = "\t" if pc.any(pc.match_substring(lines, "\t")).as_py() else " "
    parts = pc.extract_regex(lines, w3c_pattern(fields, separator))
    index = {name.lower(): i for i, name in enumerate(fields)}

    def col(*names: str) -> pa.ChunkedArray:
        for name in names:
            if name in index:
                return _dash_null(pc.struct_field(parts, f"f{index[name]}"))
        return _chunked(pa.nulls(len(lines), pa.string()))

    stamp = pc.binary_join_element_wise(col("date"), col("time"), "T")
    unit = 1000.0 if any(name.startswith("x-edge-") for name in index) else 1.0
    path = col("cs-uri-stem")
    return Fields(
        time=iso_times(stamp),
        status=_status(col("sc-status")),
        method=col("cs-method"),
        path=pc.fill_null(path, "-"),
        client=_forwarded_or(col("x-forwarded-for"), col("c-ip")),
        # IIS (space-separated) cannot hold a space in a field: it writes `+` for one
        agent=url_decoded(col("cs(user-agent)"), plus=separator == " "),
        latency_ms=to_float(col("time-taken")) * unit,
        unparsed=_nulls(parts),
    )


def url_decoded(agents: pa.ChunkedArray, plus: bool = False) -> pa.ChunkedArray:
    """CloudFront URL-encodes the user agent, sometimes twice (`%2520`): decode each
    distinct value until no escape is left (at most twice); `plus`: `+` is a space."""
    enc = pc.dictionary_encode(agents).combine_chunks()
    values = [_unquote(v, plus) for v in enc.dictionary.to_pylist()]
    decoded = pa.array(values, pa.string()).take(enc.indices)
    return _chunked(decoded)


def _unquote(value: str | None, plus: bool) -> str | None:
    if plus and value is not None:
        value = value.replace("+", " ")
    for _ in range(2):
        if value is None or "%" not in value:
            break
        value = unquote(value)
    return value


def _split_request(method: pa.Array, target: pa.Array) -> tuple[pa.Array, pa.Array]:
    """`-` for both where the method is not letters or there is no target (`_request`)."""
    ok = pc.and_(pc.utf8_is_alpha(method), pc.greater(pc.utf8_length(target), 0))
    if pc.all(ok).as_py():
        return method, target
    return pc.if_else(ok, method, "-"), pc.if_else(ok, target, "-")


def _request(request: pa.Array) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """Method and path of request lines; `-` for both when the line is not a request.

    Cut at spaces rather than matched with a pattern (a third of the cost): a method of
    letters, a space, a non-empty target; an absolute target (ALB) loses scheme and host.
    """
    words = pc.list_slice(
        pc.split_pattern(pc.fill_null(request, ""), " ", max_splits=2),
        0,
        2,
        return_fixed_size_list=True,
    )
    method, target = pc.list_element(words, 0), pc.list_element(words, 1)
    target = pc.replace_substring_regex(target, ABSOLUTE, "")  # ALB: scheme://host:port
    ok = pc.and_(pc.utf8_is_alpha(method), pc.greater(pc.utf8_length(target), 0))
    ok = pc.fill_null(ok, False)
    return _chunked(pc.if_else(ok, method, "-")), _chunked(pc.if_else(ok, target, "-"))


def _status(status: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    """`000` and `-` become 0 (no response was sent); other values pass as they are."""
    none = pc.fill_null(pc.is_in(status, value_set=pa.array(["-", "000"])), False)
    return _chunked(pc.if_else(none, NO_RESPONSE, status))


def _forwarded_or(xff: pa.Array | pa.ChunkedArray, client: pa.Array) -> pa.ChunkedArray:
    """The first address of X-Forwarded-For when the line has one, else the peer address."""
    if xff.null_count == len(xff):  # no line has one (a regex on empty strings is not free)
        return _dash_null(client)
    first = pc.struct_field(pc.extract_regex(pc.fill_null(xff, ""), FIRST_ADDRESS), "ip")
    return _chunked(pc.coalesce(first, _dash_null(client)))


def _strptime(col: pa.Array, fmt: str) -> TimeArray:
    """Times in `fmt` parsed in C++, each distinct string once (log lines share their
    second); anything else goes through the lenient parser."""
    enc = pc.dictionary_encode(col)
    parsed = pc.strptime(enc.dictionary, format=fmt, unit="ns", error_is_null=True)
    distinct = np.asarray(
        pc.cast(parsed, pa.timestamp("ns")).to_numpy(zero_copy_only=False), dtype="datetime64[ns]"
    )
    odd = np.isnat(distinct) & ~_nulls(enc.dictionary)
    if odd.any():
        distinct[odd] = to_time(_chunked(enc.dictionary.filter(pa.array(odd))))
    distinct = np.append(distinct, np.datetime64("NaT", "ns"))
    codes = pc.fill_null(enc.indices, len(enc.dictionary))
    return distinct[np.asarray(codes.to_numpy(zero_copy_only=False), dtype=np.int64)]


def iso_times(col: pa.ChunkedArray) -> TimeArray:
    """UTC datetime64[ns] of ISO 8601 times with or without an offset, cast in C++.

    Log times are mostly distinct (milliseconds), so parsing each distinct string once does
    not help; one vectorised cast per kind of value does. Other shapes go through the
    lenient parser (`columns.to_time`), which costs only what they are.
    """
    try:  # every value with an offset, as logs write times
        return _naive(pc.cast(col, pa.timestamp("ns", "UTC")))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass  # (a failed cast to naive times is slow: 0.4 s a chunk; the masks are not)
    offset = pc.fill_null(pc.match_substring_regex(col, ISO_OFFSET), False)
    out = _naive(pc.cast(pc.if_else(offset, col, None), pa.timestamp("ns", "UTC")))
    rest = pc.if_else(offset, None, col)
    if rest.null_count < len(rest):
        naive = pc.fill_null(pc.match_substring_regex(rest, ISO + "$"), False)
        plain = _naive(pc.cast(pc.if_else(naive, rest, None), pa.timestamp("ns")))
        out = np.where(np.isnat(out), plain, out)
    odd = np.isnat(out) & ~_nulls(col)
    if odd.any():
        out[odd] = to_time(_chunked(col.filter(pa.array(odd))))
    return out


def _naive(col: pa.ChunkedArray) -> TimeArray:
    if col.type.tz is not None:
        col = pc.cast(col, pa.timestamp("ns"))
    return np.asarray(col.to_numpy(), dtype="datetime64[ns]")


def _dash_null(col: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    return _chunked(pc.if_else(pc.equal(col, "-"), pa.scalar(None, pa.string()), col))


def _nulls(col: pa.Array) -> BoolArray:
    return np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def _chunked(col: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    return col if isinstance(col, pa.ChunkedArray) else pa.chunked_array([col])
