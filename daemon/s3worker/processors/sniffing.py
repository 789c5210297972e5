"""Cheap, pure inspection of a sample: its text format and its column names.

Routing imports this in the daemon's main process, so it uses the standard library only.
"""

from __future__ import annotations

import csv
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from s3worker.processors.base import Sample

DELIMITERS = ",;\t|"
# Apache/Nginx Combined (or Common) Log Format, optionally followed by a request time.
CLF_PATTERN = (
    r'^(?P<client>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "(?P<request>[^"]*)" '
    r'(?P<status>\d{3}) (?P<bytes>\S+)(?: "(?P<referer>[^"]*)" "(?P<agent>[^"]*)")?'
    r"(?: (?P<rtime>[\d.]+))?.*$"
)
CLF_RE = re.compile(CLF_PATTERN)


def norm(name: str) -> str:
    """`Patient_ID`, `patientId`, `Paciente ID` -> `patientid`: no accents, case, punctuation."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", folded.lower())


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
            json.loads(first)
        except ValueError:
            return "json"
        return "jsonl"
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
        return {}
    if isinstance(obj, dict) and len(obj) == 1 and isinstance(next(iter(obj.values())), list):
        return first_record(body[start + 1 :])  # {"records": [...]}: look inside
    return obj if isinstance(obj, dict) else {}


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
