"""Cheap, pure inspection of a sample: its text format and its column names.

Routing imports this in the daemon's main process, so it uses the standard library only.
"""

from __future__ import annotations

import csv
import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from s3worker.processors import schema
from s3worker.processors.base import Sample

SNIFF_ROWS = 200  # rows of the sample that content matching looks at
norm = schema.norm  # kept here too: the processors import it from sniffing

DELIMITERS = ",;\t|"
# Apache/Nginx Combined (or Common) Log Format, optionally followed by a request time.
CLF_PATTERN = (
    r'^(?P<client>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "(?P<request>[^"]*)" '
    r'(?P<status>\d{3}) (?P<bytes>\S+)(?: "(?P<referer>[^"]*)" "(?P<agent>[^"]*)")?'
    r"(?: (?P<rtime>[\d.]+))?.*$"
)
CLF_RE = re.compile(CLF_PATTERN)
# `{"records": [` (any key): a document whose rows are the objects of that list.
WRAPPER_START = re.compile(r'\{\s*"(?:[^"\\]|\\.)*"\s*:\s*\[')


@dataclass(frozen=True)
class Shape:
    """What a sample looks like: `csv`, `json`, `jsonl`, `clf` or `text`, and its columns."""

    fmt: str
    columns: tuple[str, ...]  # normalised names

    def has(self, aliases: Iterable[str]) -> bool:
        return any(a in self.columns for a in aliases)


def detect_format(text: str) -> str:
    """The text format of a file from its first bytes (never from its name)."""
    body = text.lstrip("\ufeff \t\r\n")
    if body.startswith("["):
        return "json"
    if body.startswith("{"):
        first = body.split("\n", 1)[0].strip()
        try:
            obj = json.loads(first)
        except ValueError:
            return "json"
        # A whole `{"records": [...]}` document on one line is JSON, not one JSON line.
        return "json" if _wrapper(obj) and body.rstrip() == first else "jsonl"
    lines = [ln for ln in body.splitlines()[:20] if ln.strip()]
    if lines and sum(bool(CLF_RE.match(ln)) for ln in lines) >= max(1, len(lines) // 2):
        return "clf"
    if lines and delimiter_of(lines[0]) is not None:
        return "csv"
    return "text"


def delimiter_of(header: str) -> str | None:
    """The most frequent of `, ; TAB |` in a CSV header line, if any."""
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else None


def first_record(body: str) -> Mapping[str, object]:
    """The first JSON object of an array or of JSON lines; empty when none is complete."""
    start = body.find("{")
    if start < 0:
        return {}
    try:
        obj, _ = json.JSONDecoder().raw_decode(body, start)
    except ValueError:
        opening = WRAPPER_START.match(body, start)  # a wrapper cut by the sample's end
        return first_record(body[opening.end() :]) if opening else {}
    if _wrapper(obj):
        return first_record(body[start + 1 :])  # {"records": [...]}: look inside
    return obj if isinstance(obj, dict) else {}


def _wrapper(obj: object) -> bool:
    return isinstance(obj, dict) and len(obj) == 1 and isinstance(next(iter(obj.values())), list)


def shape_of(sample: Sample) -> Shape:
    text = sample.text.lstrip("\ufeff \t\r\n")
    fmt = detect_format(text)
    if fmt in ("json", "jsonl"):
        return Shape(fmt, tuple(norm(k) for k in first_record(text)))
    if fmt == "csv":
        header = text.splitlines()[0]
        names = next(csv.reader([header], delimiter=delimiter_of(header) or ","))
        return Shape(fmt, tuple(norm(n) for n in names))
    return Shape(fmt, ())


@functools.lru_cache(maxsize=8)  # every processor's sniff asks for the same sample's rows
def records(
    sample: Sample, header: tuple[str, ...] | None = None, delimiter: str | None = None
) -> tuple[str, list[str], list[list[str | None]]]:
    """The sample's format, column names (as written) and first rows, as text cells.

    `header` names the columns of a header-less file; `delimiter` overrides the guess.
    """
    text = sample.text.lstrip("\ufeff \t\r\n")
    fmt = detect_format(text) if header is None else "csv"
    if fmt in ("json", "jsonl"):
        rows = _json_rows(text, fmt)
        names = list(dict.fromkeys(k for row in rows for k in row))
        return fmt, names, [[_text(row.get(n)) for n in names] for row in rows]
    if fmt != "csv":
        return fmt, [], []
    lines = text.splitlines()[: SNIFF_ROWS + 2][:-1]  # the last line may be cut
    sep = delimiter or (delimiter_of(lines[0]) if lines else None) or ","
    parsed = list(csv.reader(lines, delimiter=sep))
    names = list(header) if header is not None else (parsed[0] if parsed else [])
    body = parsed if header is not None else parsed[1:]
    return fmt, names, [[c if c != "" else None for c in row] for row in body]


def _json_rows(text: str, fmt: str) -> list[dict[str, object]]:
    if fmt == "jsonl":
        rows = []
        for line in text.splitlines()[:SNIFF_ROWS]:
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                rows.append(obj)
        return rows
    return _array_rows(text)


def _array_rows(body: str) -> list[dict[str, object]]:
    """Up to SNIFF_ROWS objects of a JSON array (or of `{"records": [...]}`), as far as the
    sample goes."""
    decoder, rows = json.JSONDecoder(), list[dict[str, object]]()
    pos = first = body.find("{")
    while pos >= 0 and len(rows) < SNIFF_ROWS:
        try:
            obj, end = decoder.raw_decode(body, pos)
        except ValueError:
            opening = WRAPPER_START.match(body, pos) if pos == first else None
            if opening is None:
                break
            pos = body.find("{", opening.end())  # a wrapper cut by the sample's end: look inside
            continue
        if _wrapper(obj):
            return [r for r in next(iter(obj.values()))[:SNIFF_ROWS] if isinstance(r, dict)]
        if isinstance(obj, dict):
            rows.append(obj)
        pos = body.find("{", end)
    return rows


def _text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value) if isinstance(value, (dict, list, bool)) else str(value)


def score(
    shape: Shape, required: Iterable[Iterable[str]], optional: Iterable[Iterable[str]]
) -> float:
    """0 unless every required field has a column; 0.7 up to 0.95 with the optional ones."""
    if shape.fmt not in ("csv", "json", "jsonl"):
        return 0.0
    if not all(shape.has(aliases) for aliases in required):
        return 0.0
    options = list(optional)
    found = sum(shape.has(aliases) for aliases in options)
    return 0.7 + 0.25 * (found / len(options) if options else 1.0)
