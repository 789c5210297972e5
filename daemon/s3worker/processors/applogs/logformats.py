"""The access-log formats applogs reads, each with its signature and its line pattern.

Standard library only: routing sniffs with these signatures in the daemon's main process.
The patterns are written in the syntax that both Python's `re` and RE2 (which pyarrow's
`extract_regex` uses) accept, so one definition serves sniffing and vectorised parsing.

- `clf`: Apache/nginx Common and Combined Log Format, with whatever nginx "main" adds after
  the user agent (`"$http_x_forwarded_for"`, `$request_time`, `$upstream_response_time`...).
- `alb`: AWS Application Load Balancer access logs.
- `s3`: Amazon S3 server access logs.
- `w3c`: W3C extended logs with a `#Fields:` header: CloudFront standard logs (tab-separated)
  and IIS (space-separated).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

QUOTED = r'(?:[^"\\]|\\.)*'  # a quoted field's content; `\"` escapes a quote (Apache, S3)
# Apache/nginx: client, identity, user, [time], "request", status, bytes, then (Combined)
# "referer" "user agent", then anything nginx's log_format appends.
CLF = (
    r"^(?P<client>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "
    rf'"(?P<request>{QUOTED})" (?P<status>\d{{3}}|-) (?P<bytes>\S+)'
    rf'(?: "(?P<referer>{QUOTED})" "(?P<agent>{QUOTED})")?(?P<rest>.*)$'
)
# The same line cut at its quotes: what comes before the request, and between it and the
# referer (or the end of a Common Log Format line).
CLF_HEAD = r"^(?P<client>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] $"
CLF_MIDDLE = r"^ (?P<status>\d{3}|-) (?P<bytes>\S+) ?$"
# Application Load Balancer: type time elb client:port target:port request_processing_time
# target_processing_time response_processing_time elb_status_code target_status_code
# received_bytes sent_bytes "request" "user_agent" ssl_cipher ssl_protocol target_group_arn
# "trace_id" ... (fields are only ever appended: the rest of the line is not needed).
ALB = (
    r"^(?P<type>https?|h2|grpcs|wss?) (?P<time>\S+) (?P<elb>\S+) "
    r"(?P<client>\S+?)(?::\d+)? (?P<target>\S+) "
    r"(?P<request_processing>\S+) (?P<target_processing>\S+) (?P<response_processing>\S+) "
    r"(?P<status>\S+) (?P<target_status>\S+) (?P<received_bytes>\S+) (?P<bytes>\S+) "
    rf'"(?P<request>{QUOTED})" "(?P<agent>{QUOTED})"(?P<rest>.*)$'
)
# S3 server access log: bucket_owner bucket [time] remote_ip requester request_id operation
# key "request_uri" http_status error_code bytes_sent object_size total_time turn_around_time
# "referer" "user_agent" version_id ... (`-` where a field does not apply).
S3 = (
    r"^(?P<owner>\S+) (?P<bucket>\S+) \[(?P<time>[^\]]+)\] (?P<client>\S+) (?P<requester>\S+) "
    r"(?P<request_id>\S+) (?P<operation>\S+) (?P<key>\S+) "
    rf'(?:"(?P<request>{QUOTED})"|-) (?P<status>\d{{3}}|-) (?P<error_code>\S+) (?P<bytes>\S+) '
    r"(?P<object_size>\S+) (?P<total_time>\S+) (?P<turn_around>\S+) "
    rf'(?:"(?P<referer>{QUOTED})"|-) (?:"(?P<agent>{QUOTED})"|-)(?P<rest>.*)$'
)
LINE_PATTERNS = {"clf": CLF, "alb": ALB, "s3": S3}
# What is unique to each: S3's bucket owner is a 64-hex canonical id; ALB lines start with
# the connection type and an ISO time. Both would fail CLF's bracketed-time position.
SIGNATURES = {
    "alb": re.compile(ALB),
    "s3": re.compile(r"^(?=[0-9a-f]{64} )" + S3[1:]),
    "clf": re.compile(CLF),
}
FIELDS_HEADER = "#Fields:"
LINE_FORMATS = ("clf", "alb", "s3", "w3c")
RECORD_FORMATS = ("json", "jsonl", "csv")  # records with named fields (see applogs.ALIASES)
FORMATS = LINE_FORMATS + RECORD_FORMATS
# Other names users give the same formats (explicit selection).
FORMAT_ALIASES = {
    "common": "clf",
    "combined": "clf",
    "nginx": "clf",
    "apache": "clf",
    "elb": "alb",
    "s3access": "s3",
    "cloudfront": "w3c",
    "iis": "w3c",
}


def canonical_format(name: str) -> str:
    """`combined` -> `clf`, `cloudfront` -> `w3c`; ValueError naming the choices otherwise."""
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    key = FORMAT_ALIASES.get(key, key)
    if key not in FORMATS:
        choices = ", ".join([*FORMATS, *FORMAT_ALIASES])
        raise ValueError(f"unknown log format {name!r}; accepted: {choices}")
    return key


def detect_line_format(text: str) -> str | None:
    """`clf`, `alb`, `s3` or `w3c` when most of the first lines carry that signature."""
    lines = [ln for ln in text.lstrip("\ufeff").splitlines()[:40] if ln.strip()]
    if any(ln.startswith(FIELDS_HEADER) for ln in lines[:10]):
        return "w3c"
    data = [ln for ln in lines if not ln.startswith("#")][:20]
    if not data:
        return None
    for name, signature in SIGNATURES.items():
        if sum(bool(signature.match(ln)) for ln in data) >= max(1, (len(data) + 1) // 2):
            return name
    return None


def w3c_fields(header: str) -> list[str]:
    """`#Fields: date time cs(User-Agent)` -> ['date', 'time', 'cs(User-Agent)']."""
    return header[len(FIELDS_HEADER) :].split()


def w3c_pattern(fields: Sequence[str], separator: str) -> str:
    """A line pattern with one group per field, named `f0`, `f1`, ... (names are not
    identifiers: `cs(User-Agent)`); extra fields are ignored, a line with fewer fields
    does not match (it is not the format: the header says what every line holds)."""
    sep = re.escape(separator)
    cell = rf"[^{sep}]*"
    groups = [rf"(?P<f{i}>{cell})" for i in range(len(fields))]
    return "^" + sep.join(groups) + rf"(?:{sep}.*)?$"


def w3c_separator(lines: Iterable[str]) -> str:
    """CloudFront separates fields with tabs, IIS with spaces."""
    for line in lines:
        if line and not line.startswith("#"):
            return "\t" if "\t" in line else " "
    return "\t"
