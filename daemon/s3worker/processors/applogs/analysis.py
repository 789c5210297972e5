"""The applogs processor's pandas side: requests in, per-minute metrics and breakdowns out.

Every format becomes the same request fields (logparse for log lines, column aliases for
JSON/CSV records), so the figures mean the same whatever wrote the log. Latency is always
in milliseconds: converted from the unit the format or the field name says.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from itertools import pairwise
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from s3worker.errors import BadDataError
from s3worker.processors.applogs import ALIASES
from s3worker.processors.applogs import traffic as agg
from s3worker.processors.applogs.agents import classify
from s3worker.processors.applogs.inorder import ordered_map
from s3worker.processors.applogs.logformats import (
    FIELDS_HEADER,
    LINE_FORMATS,
    detect_line_format,
    w3c_fields,
)
from s3worker.processors.applogs.loglines import iter_log_lines
from s3worker.processors.applogs.logparse import Fields, iso_times, parse_lines
from s3worker.processors.applogs.tally import Requests, Tally, tally
from s3worker.processors.base import JobContext, ProcessResult, Sample, read_sample
from s3worker.processors.sniffing import detect_format
from s3worker.processors.tabular.columns import (
    BoolArray,
    FloatArray,
    missing,
    resolve,
    strings,
    to_float,
)
from s3worker.processors.tabular.output import RejectSink, write_frame
from s3worker.processors.tabular.reading import (
    RAW_LIMIT,
    Reject,
    input_encoding,
    iter_chunks,
    undecodable,
)

FORMAT_NAMES = {  # as reject reasons say them: "not <name> line"
    "clf": "a Common/Combined Log Format",
    "alb": "an ALB access log",
    "s3": "an S3 server access log",
    "w3c": "a W3C extended log",
}
# Field-name units: the last word of the name (`latency_ms`, `durationSeconds`), else these
# names that nginx and load balancers write in seconds; anything else is milliseconds.
UNIT_WORDS = {
    **dict.fromkeys(("ms", "msec", "millis", "milliseconds"), 1.0),
    **dict.fromkeys(("us", "usec", "micros", "microseconds"), 0.001),
    **dict.fromkeys(("ns", "nanos", "nanoseconds"), 1e-6),
    **dict.fromkeys(("s", "sec", "secs", "seconds"), 1000.0),
}
SECOND_FIELDS = {"requesttime", "upstreamresponsetime", "upstreamtime", "timetaken"}
# A value with its own unit, as Go and many JSON loggers write durations: "12.5ms", "1.2s".
VALUE_UNIT = r"^\s*(?P<n>\d+(?:\.\d+)?)\s*(?P<u>ns|us|µs|ms|s)\s*$"
VALUE_SCALE = {"ns": 1e-6, "us": 0.001, "µs": 0.001, "ms": 1.0, "s": 1000.0}
METHOD = r"^[A-Z]{3,12}$"  # anything else (binary probes, typos) counts as OTHER
# Log lines are parsed in slices of this many lines, PARSE_THREADS slices at once (the
# kernels release the GIL); a slice's temporaries are what the memory grows with.
SLICE_ROWS = 64_000
PARSE_THREADS = 2


def run(src: Path, out_dir: Path, ctx: JobContext, log_format: str | None = None) -> ProcessResult:
    # The sample routing read travels with the job; read it here only when run on its own.
    sample = ctx.sample or read_sample(src, key=ctx.key)
    fmt = log_format or file_format(sample)
    traffic, rejected = agg.Traffic(), RejectSink(out_dir)
    for counts, rejects in _frames(src, fmt, ctx, sample):
        rejected.add(rejects)
        traffic.merge(counts)
    rows = rejected.close()
    codes = agg.status_codes(traffic)
    minutes = agg.per_minute(traffic, codes)
    methods = agg.ranked(traffic.methods, "method")
    top = agg.top_paths(traffic)
    rows |= write_frame(out_dir, "per_minute.parquet", minutes, agg.MINUTE_SCHEMA)
    rows |= write_frame(out_dir, "status_codes.parquet", codes, agg.STATUS_SCHEMA)
    rows |= write_frame(out_dir, "methods.parquet", methods, agg.METHOD_SCHEMA)
    rows |= write_frame(out_dir, "top_paths.parquet", top, agg.PATH_SCHEMA)
    summary = {
        "encoding": input_encoding(src, sample),
        "format": fmt,
        "latency_unit": "ms",
        **agg.summary(traffic, minutes, codes, methods),
        "rejected_rows": rejected.rows,
        "top_paths": top.head(5)["path"].tolist(),
        "outputs": rows,
    }
    return ProcessResult(summary=summary, rows=rows)


def file_format(sample: Sample) -> str:
    """A log line format when the content has its signature, else csv/json/jsonl."""
    text = sample.text
    return detect_line_format(text) or detect_format(text)


def _frames(
    src: Path, fmt: str, ctx: JobContext, sample: Sample
) -> Iterator[tuple[Tally, list[Reject]]]:
    if fmt in LINE_FORMATS:
        yield from _line_frames(src, fmt, ctx.chunk_rows, input_encoding(src, sample))
        return
    cols: dict[str, str] | None = None
    for chunk in iter_chunks(src, ctx.chunk_rows, sample, ctx.options):
        if cols is None:
            cols = resolve(chunk.table, ALIASES)
            if not {"time", "status", "path"} <= cols.keys():
                raise BadDataError(
                    "logs need time, status and path fields (or a known log line format); "
                    f"found {chunk.table.column_names}"
                )
        yield _requests(
            chunk.start, _record_fields(chunk.table, cols), chunk.rejects, raw=chunk.table
        )


# --- log lines -------------------------------------------------------------------------


def _line_frames(
    src: Path, fmt: str, chunk_rows: int, encoding: str
) -> Iterator[tuple[Tally, list[Reject]]]:
    def parse(job: tuple[int, pa.Array, list[int], list[str]]) -> tuple[Tally, list[Reject]]:
        start, lines, bad, fields = job
        return _line_requests(start, lines, bad, fmt, fields, encoding)

    yield from ordered_map(parse, _line_jobs(src, fmt, chunk_rows, encoding), PARSE_THREADS)


def _line_jobs(
    src: Path, fmt: str, chunk_rows: int, encoding: str
) -> Iterator[tuple[int, pa.Array, list[int], list[str]]]:
    """Slices of at most SLICE_ROWS lines, each with the W3C `#Fields` in force there."""
    fields: list[str] = []  # W3C: the latest #Fields header
    for start, lines, bad in iter_log_lines(src, min(chunk_rows, SLICE_ROWS), encoding):
        for offset, part, part_bad, header in _segments(lines, bad, fmt):
            fields = w3c_fields(header) if header else fields
            for a in range(0, len(part), SLICE_ROWS):
                b = min(a + SLICE_ROWS, len(part))
                bad_here = [i - a for i in part_bad if a <= i < b]
                yield start + offset + a, part.slice(a, b - a), bad_here, fields


def _segments(
    lines: pa.Array, bad: Sequence[int], fmt: str
) -> Iterator[tuple[int, pa.Array, list[int], str | None]]:
    """Runs of lines that share one W3C `#Fields` header (one run for other formats)."""
    cuts: list[int] = []
    if fmt == "w3c":
        headers = pc.starts_with(lines, FIELDS_HEADER).to_numpy(zero_copy_only=False)
        cuts = np.flatnonzero(np.asarray(headers, dtype=bool)).tolist()
    bounds = [0, *cuts, len(lines)]
    for a, b in pairwise(bounds):
        if b <= a:
            continue
        header = lines[a].as_py() if a in cuts else None
        yield a, lines.slice(a, b - a), [i - a for i in bad if a <= i < b], header


def _line_requests(
    start: int, arr: pa.Array, bad: list[int], fmt: str, w3c: list[str], encoding: str
) -> tuple[Tally, list[Reject]]:
    comment = np.asarray(pc.starts_with(arr, "#").to_numpy(zero_copy_only=False), dtype=bool)
    if fmt == "w3c" and not w3c and not (comment | _blank(arr)).all():
        raise BadDataError("a W3C extended log needs a #Fields: header before its first line")
    fields = parse_lines(fmt, arr, w3c)
    # A line in a pattern's format is not blank (a one-field W3C line can be empty).
    comment |= _blank(arr, among=None if fmt == "w3c" else fields.unparsed)
    undecoded = np.zeros(len(arr), dtype=bool)
    undecoded[list(bad)] = True
    fields.unparsed |= undecoded
    unread = {
        f"not {FORMAT_NAMES[fmt]} line": fields.unparsed & ~undecoded & ~comment,
        undecodable(encoding): undecoded,
    }
    return _requests(start, fields, [], unread, skip=comment, raw=arr)


def _blank(lines: pa.Array, among: BoolArray | None = None) -> BoolArray:
    """Empty or whitespace-only lines (looked for only `among` those lines when given)."""
    out = np.zeros(len(lines), dtype=bool)
    rows = np.arange(len(lines)) if among is None else np.flatnonzero(among)
    if rows.size:
        some = lines.take(pa.array(rows)) if among is not None else lines
        out[rows] = np.asarray(
            pc.equal(pc.utf8_trim_whitespace(some), "").to_numpy(zero_copy_only=False), dtype=bool
        )
    return out


# --- JSON and CSV records --------------------------------------------------------------


def _record_fields(t: pa.Table, cols: dict[str, str]) -> Fields:
    path, method = strings(t, cols.get("path")), strings(t, cols.get("method"))
    # A `request` field holding the request line ("GET /a HTTP/1.1"), as nginx JSON logs do.
    request = pc.extract_regex(pc.fill_null(path, ""), r"^(?P<m>[A-Z]+) (?P<p>\S+)(?: HTTP/\S+)?$")
    split = pc.is_valid(request)
    path = pc.if_else(split, pc.struct_field(request, "p"), path)
    method = pc.if_else(pc.and_(split, pc.is_null(method)), pc.struct_field(request, "m"), method)
    return Fields(
        time=iso_times(strings(t, cols.get("time"))),
        status=strings(t, cols.get("status")),
        method=method,
        path=path,
        client=strings(t, cols.get("client")),
        agent=strings(t, cols.get("agent")),
        latency_ms=_latency_ms(strings(t, cols.get("latency")), cols.get("latency")),
        unparsed=np.zeros(t.num_rows, dtype=bool),
    )


def _latency_ms(col: pa.ChunkedArray, name: str | None) -> FloatArray:
    """Milliseconds, from the unit a value carries ("12ms") or else its field's name."""
    values = to_float(col) * field_scale(name or "")
    with_unit = pc.extract_regex(pc.fill_null(col, ""), VALUE_UNIT)
    if pc.any(pc.is_valid(with_unit)).as_py():
        number = to_float(pc.fill_null(pc.struct_field(with_unit, "n"), ""))
        scale = np.array(
            [VALUE_SCALE.get(u or "", np.nan) for u in pc.struct_field(with_unit, "u").to_pylist()]
        )
        values = np.where(np.isnan(number), values, number * scale)
    return values


def field_scale(name: str) -> float:
    """ms per unit of a latency field: `latency_ms` 1, `request_time` 1000, `dur_us` 0.001."""
    words = re.findall(r"[a-z]+|[0-9]+", re.sub(r"([a-z])([A-Z])", r"\1 \2", name).lower())
    if len(words) > 1 and words[-1] in UNIT_WORDS:
        return UNIT_WORDS[words[-1]]
    return 1000.0 if "".join(words) in SECOND_FIELDS else 1.0


# --- shared ----------------------------------------------------------------------------


def _requests(
    start: int,
    f: Fields,
    rejects: list[Reject],
    unread: dict[str, BoolArray] | None = None,
    skip: BoolArray | None = None,
    raw: pa.Array | pa.Table | None = None,
) -> tuple[Tally, list[Reject]]:
    """The frame Traffic adds, and a Reject for each row that cannot be a request.

    `unread`: rows that were never read (not the format, bad bytes), each with one reason;
    `skip`: rows that are not requests and not errors either (comments, blank lines)."""
    status = to_float(f.status)
    problems = _problems(f, status)
    if unread:
        not_read = np.logical_or.reduce(list(unread.values()))
        problems = {k: v & ~not_read for k, v in problems.items()} | unread
    bad = np.logical_or.reduce(list(problems.values()))
    if skip is not None:
        bad &= ~skip
    keep = ~bad if skip is None else ~bad & ~skip
    out = list(rejects) + _rejects(start, problems, bad, raw)
    return _tally(f, status, keep), out


def _problems(f: Fields, status: FloatArray) -> dict[str, BoolArray]:
    no_status = missing(f.status)
    http = (status == 0) | ((status >= 100) & (status < 600))  # 0: no response was sent
    return {
        "time: missing or unparseable": np.isnat(f.time),
        "status: missing": no_status,
        "status: not an HTTP status": ~no_status & ~http,
        "path: missing": missing(f.path),
    }


def _rejects(
    start: int, problems: dict[str, BoolArray], bad: BoolArray, raw: pa.Array | pa.Table | None
) -> list[Reject]:
    rows = np.flatnonzero(bad)
    if not rows.size:
        return []
    out = []
    for i, text in zip(rows.tolist(), _raw_texts(rows, raw), strict=True):
        reason = "; ".join(name for name, mask in problems.items() if mask[i])
        out.append(Reject(start + i, reason, text[:RAW_LIMIT]))
    return out


def _raw_texts(rows: np.ndarray, raw: pa.Array | pa.Table | None) -> list[str]:
    """The rejected lines as they were, or the records as JSON."""
    if raw is None:
        return [""] * len(rows)
    taken = raw.take(pa.array(rows))
    if isinstance(taken, pa.Table):
        return [json.dumps(record) for record in taken.to_pylist()]
    return [str(line) for line in taken.to_pylist()]


def _verbs(method: pa.Array) -> pa.Array:
    """Upper-case verbs; `-` where the log has none, OTHER for binary probes and typos."""
    upper = pc.utf8_upper(method)
    known = pc.or_(pc.match_substring_regex(upper, METHOD), pc.equal(upper, "-"))
    return pc.if_else(known, upper, "OTHER")


def _per_distinct(
    values: pa.ChunkedArray, fn: Callable[[pa.Array], pa.Array], keep: BoolArray
) -> tuple[pa.Array, npt.NDArray[np.int64]]:
    """The distinct values of `fn(values)` (computed once per distinct value: a chunk has
    few), and the index among them of each kept row's."""
    enc = pc.dictionary_encode(values).combine_chunks()
    names = pc.dictionary_encode(fn(enc.dictionary))
    # A row with no value is never kept (its reject reason names the field).
    codes = np.asarray(pc.fill_null(enc.indices, 0).to_numpy(zero_copy_only=False))[keep]
    if not len(enc.dictionary):
        return names.dictionary, np.zeros(0, dtype=np.int64)
    inner = np.asarray(names.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    return names.dictionary, inner[codes]


def _tally(f: Fields, status: FloatArray, keep: BoolArray) -> Tally:
    """The slice's counts, made in the thread that parsed it (see tally)."""
    return tally(
        Requests(
            minute=f.time[keep].astype("datetime64[m]").astype("datetime64[ns]"),
            status=status[keep].astype(np.int64),
            method=_per_distinct(pc.fill_null(f.method, "-"), _verbs, keep),
            path=_per_distinct(f.path, _no_query, keep),
            client=agg.client_ids(f.client)[keep],
            latency_ms=f.latency_ms[keep],
            agent=classify(f.agent)[keep],
        )
    )


def _no_query(paths: pa.Array) -> pa.Array:
    return pc.replace_substring_regex(paths, r"[?#].*$", "")
