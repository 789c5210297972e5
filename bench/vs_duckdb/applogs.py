"""applogs side by side with DuckDB: the processor vs the query a data engineer would write.

The input is an nginx "combined" access log with `$request_time` (what `make_input` writes:
tens of thousands of clients, a few hundred paths with query strings, browsers and bots, a
planted 0.2% of broken lines). The DuckDB query reads the same file as one text column,
splits it with `regexp_extract` (the Combined Log Format pattern), skips the lines that do
not match and writes the same per-minute, per-status, per-method and per-path aggregates
as Parquet, bots told from humans with the same CrawlerDetect patterns once per distinct
user agent. `bench/bench_vs_duckdb.py --kinds applogs` runs it beside pandas' pyarrow read
(vs_duckdb.side_by_side) and compares the two sides' tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from s3worker.samples.applogs import HUMANS as SAMPLE_HUMANS

from vs_duckdb import REPEATS, same_tables, side_by_side

KIND = "applogs"
SUFFIX = ".log"
BLOCK_LINES = 100_000
REQUESTS_PER_SECOND = 2_000  # a busy site: ~120k requests a minute
PATHS = [
    "/",
    "/login",
    "/logout",
    "/cart",
    "/checkout",
    "/search",
    "/health",
    *[f"/api/v1/items/{i}" for i in range(200)],
    *[f"/static/{name}.{ext}" for name in ("app", "vendor", "main") for ext in ("js", "css")],
    *[f"/products/{i}" for i in range(300)],
]
HUMANS = [
    *SAMPLE_HUMANS,
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.6478.71 Mobile Safari/537.36",
    *[
        f"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0"
        for v in range(100, 128)
    ],
]
BOTS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "curl/8.5.0",
    "python-requests/2.32.3",
    "-",
]
STATUSES = (["200", "201", "204", "301", "304", "400", "404", "500", "502", "503"],
            [0.74, 0.03, 0.02, 0.03, 0.06, 0.02, 0.06, 0.02, 0.01, 0.01])  # fmt: skip
METHODS = (["GET", "POST", "PUT", "DELETE", "HEAD"], [0.8, 0.12, 0.03, 0.02, 0.03])
REFERERS = ["-", "https://www.example.com/", "https://www.google.com/", "https://t.co/x"]
BROKEN_SHARE = 0.002


def make_input(path: Path, size_bytes: int, seed: int = 7) -> Path:
    """An nginx combined log (with `$request_time`) of at least `size_bytes`, written in
    blocks of BLOCK_LINES lines (about 18 MB: the last block may overshoot by that)."""
    rng = np.random.default_rng(seed)
    written, first = 0, 0
    with path.open("wb") as f:
        while written < size_bytes:
            block = _block(rng, first, BLOCK_LINES)
            f.write(block)
            written += len(block)
            first += BLOCK_LINES
    return path


def _block(rng: np.random.Generator, first: int, n: int) -> bytes:
    seconds = (first + np.arange(n)) // REQUESTS_PER_SECOND
    stamps = np.datetime64("2024-06-01T00:00:00", "s") + seconds
    times = pc.strftime(pa.array(stamps), format="%d/%b/%Y:%H:%M:%S +0000")
    octets = rng.integers(0, 256, (n, 2)).astype(str)
    clients = pc.binary_join_element_wise("10.1", octets[:, 0], octets[:, 1], ".")
    bot = rng.random(n) < 0.2
    agent = np.where(bot, rng.choice(BOTS, n), rng.choice(HUMANS, n))
    path = np.array(PATHS)[np.minimum(rng.zipf(1.3, n) - 1, len(PATHS) - 1)]
    query = np.where(rng.random(n) < 0.3, "?q=" + rng.integers(0, 1000, n).astype(str), "")
    request = pc.binary_join_element_wise(
        rng.choice(METHODS[0], n, p=METHODS[1]), pc.binary_join_element_wise(path, query, ""),
        "HTTP/1.1", " ",
    )  # fmt: skip
    rtime = pc.round(pa.array(rng.lognormal(-3.0, 1.0, n)), 3).cast(pa.string())
    parts: list[Any] = [
        clients, " - - [", times, '] "', request, '" ',
        rng.choice(STATUSES[0], n, p=STATUSES[1]), " ", rng.integers(0, 50_000, n).astype(str),
        ' "', rng.choice(REFERERS, n), '" "', agent, '" ', rtime,
    ]  # fmt: skip
    lines = pc.binary_join_element_wise(*parts, "")
    broken = rng.random(n) < BROKEN_SHARE
    lines = pc.if_else(pa.array(broken), pc.utf8_slice_codeunits(lines, 0, 40), lines)
    return ("\n".join(lines.to_pylist()) + "\n").encode()


# --- the DuckDB side ---------------------------------------------------------------------

# What a data engineer writes for this log_format: the request split into method and path
# (query string dropped), the status, the user agent and `$request_time` (seconds).
DUCK_PATTERN = (
    r'^(\S+) \S+ \S+ \[([^\]]+)\] "([A-Za-z]+) ([^ "?#]*)[^"]*" (\d{3}) \S+ '
    r'"[^"]*" "([^"]*)"(?: (\d+(?:\.\d+)?))?'
)
DUCK_FIELDS = ["client", "time", "method", "path", "status", "agent", "rtime"]
QUERIES = {
    "per_minute": """SELECT minute, count(*) AS requests,
          count(*) FILTER (status BETWEEN 200 AND 299) AS status_2xx,
          count(*) FILTER (status BETWEEN 300 AND 399) AS status_3xx,
          count(*) FILTER (status BETWEEN 400 AND 499) AS status_4xx,
          count(*) FILTER (status >= 500) AS status_5xx,
          count(*) FILTER (status >= 500) / count(*) AS error_rate,
          approx_quantile(latency_ms, 0.5) AS p50_ms,
          approx_quantile(latency_ms, 0.95) AS p95_ms,
          approx_quantile(latency_ms, 0.99) AS p99_ms,
          count(DISTINCT client) AS unique_clients,
          count(*) FILTER (bot) AS bot_requests
        FROM req JOIN agents USING (agent) GROUP BY minute ORDER BY minute""",
    "status_codes": """SELECT minute, status, count(*) AS requests FROM req
        GROUP BY minute, status ORDER BY minute, status""",
    "methods": """SELECT upper(method) AS method, count(*) AS requests,
          count(*) FILTER (status >= 500) AS errors, errors / requests AS error_rate
        FROM req GROUP BY 1 ORDER BY requests DESC""",
    "top_paths": """SELECT row_number() OVER (ORDER BY requests DESC, errors DESC) AS rank,
          * FROM (SELECT path, count(*) AS requests,
                    count(*) FILTER (status >= 500) AS errors, errors / requests AS error_rate
                  FROM req GROUP BY path ORDER BY requests DESC, errors DESC LIMIT 100)""",
}
# Compared after the runs: every count; percentiles differ by design (2% histogram bins
# against DuckDB's t-digest, checked to 5% in tests/test_bench_vs_duckdb_applogs.py).
CHECKED = {
    "per_minute": (["minute"], ["minute", "requests", "status_2xx", "status_3xx",
                   "status_4xx", "status_5xx", "error_rate", "unique_clients", "bot_requests"]),
    "status_codes": (["minute", "status"], None),
    "methods": (["method"], None),
    "top_paths": (["path"], ["path", "requests", "errors", "error_rate"]),
}  # fmt: skip


def query(src: Path, out: Path) -> str:
    """The DuckDB script writing the processor's four tables from `src` into `out`: the lines
    split by the pattern, bots told from humans once per distinct user agent."""
    from s3worker.processors.applogs.agents import bot_patterns

    exclusions, crawlers = (_literal(p) for p in bot_patterns())
    script = f"""
    CREATE TEMP TABLE req AS
    WITH parsed AS (
      SELECT regexp_extract(line, {_literal(DUCK_PATTERN)}, {DUCK_FIELDS!r}) AS f
      FROM read_csv({_literal(str(src))}, columns = {{'line': 'VARCHAR'}}, delim = '\x1f',
                    quote = '', escape = '', header = false, auto_detect = false))
    SELECT date_trunc('minute', try_strptime(f.time, '%d/%b/%Y:%H:%M:%S %z')) AS minute,
           CAST(f.status AS INTEGER) AS status, f.method, f.path, f.client, f.agent,
           TRY_CAST(f.rtime AS DOUBLE) * 1000 AS latency_ms
    FROM parsed WHERE f.client <> '' AND minute IS NOT NULL;
    CREATE TEMP TABLE agents AS
    SELECT agent, agent NOT IN ('', '-')
           AND trim(regexp_replace(agent, {exclusions}, '', 'g')) <> ''
           AND regexp_matches(trim(regexp_replace(agent, {exclusions}, '', 'g')), {crawlers}, 'i')
           AS bot
    FROM (SELECT DISTINCT agent FROM req);
    """
    for name, sql in QUERIES.items():
        script += f"COPY ({sql}) TO {_literal(str(out / f'{name}.parquet'))} (FORMAT parquet);\n"
    return script


def _literal(text: str) -> str:
    """A SQL string literal (DuckDB reads backslashes in one as they are)."""
    return "'" + text.replace("'", "''") + "'"


def duckdb_query(src: Path, out: Path) -> int:
    """The same four tables as the processor, from `src`, as Parquet in `out`; the requests."""
    import duckdb

    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(query(src, out))
    (requests,) = con.execute("SELECT count(*) FROM req").fetchone() or (0,)
    con.close()
    return int(requests)


def check(mine: Path, theirs: Path) -> bool:
    """Every count of every table the same (percentiles are estimated differently)."""
    return all(
        same_tables(pq.read_table(mine / f"{name}.parquet"),
                    pq.read_table(theirs / f"{name}.parquet"), keys, columns)
        for name, (keys, columns) in CHECKED.items()
    )  # fmt: skip


def measure(path: Path, repeats: int = REPEATS) -> dict[str, Any]:
    return side_by_side(KIND, path, query, repeats, check)
