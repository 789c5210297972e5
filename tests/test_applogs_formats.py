"""Applogs on real public logs and the formats AWS users keep in S3.

The expected figures were computed from the files independently of the processor (awk,
grep, and CrawlerDetect's own matcher for bots); tests/data/README.md says where each file
comes from.
"""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pytest
from crawlerdetect import CrawlerDetect
from processing import run
from s3worker.errors import BadDataError
from s3worker.processors.applogs import AppLogsProcessor
from s3worker.processors.base import JobContext, ProcessResult, execute, read_sample
from s3worker.processors.registry import registry

DATA = Path(__file__).parent / "data" / "applogs"
APACHE = DATA / "apache_combined_elastic.log"
CLOUDFRONT = DATA / "cloudfront_scogs.log.gz"
ALB = DATA / "alb_awsdocs.log"
S3 = DATA / "s3_access_awsdocs.log"
IIS_EC2 = DATA / "iis_webknowit.log"
NGINX = DATA / "nginx_zanbil.log"
IIS_7 = DATA / "iis_waikolai.log"


def crawler_counts(agents: Iterable[str]) -> tuple[int, int]:
    """(bots, lines without a user agent) by CrawlerDetect's own matcher, one by one."""
    detector, bots, unknown = CrawlerDetect(), 0, 0
    for agent in agents:
        unknown += agent == "-"
        bots += agent != "-" and detector.is_crawler(agent)
    return bots, unknown


def quoted_agents(src: Path) -> list[str]:
    """The user agent of each Combined Log Format line: its third quoted field."""
    return [line.split('"')[5] for line in src.read_text().splitlines()]


def run_as(fmt: str, src: Path, out: Path) -> ProcessResult:
    ctx = JobContext(key=src.name, size=src.stat().st_size)
    return execute(AppLogsProcessor(fmt), src, out, ctx)


@pytest.mark.parametrize(
    ("src", "fmt"), [(APACHE, "clf"), (CLOUDFRONT, "w3c"), (ALB, "alb"), (S3, "s3")]
)
def test_each_format_is_sniffed_and_routed_to_applogs(src: Path, fmt: str, tmp_path: Path) -> None:
    assert registry.route(read_sample(src, src.name)).name == "applogs"
    assert run("applogs", src, tmp_path).summary["format"] == fmt


def test_apache_combined_log_from_a_real_site(tmp_path: Path) -> None:
    # awk '{print $9}' | sort | uniq -c; awk '{print $1}' | sort -u | wc -l
    result = run("applogs", APACHE, tmp_path)
    s = result.summary
    assert s["requests"] == 1000
    assert s["rejected_rows"] == 0
    assert s["status_codes"] == {"200": 896, "206": 17, "301": 53, "304": 17, "404": 17}
    assert s["status_classes"] == {"2xx": 913, "3xx": 70, "4xx": 17, "5xx": 0}
    assert s["methods"] == {"GET": 997, "HEAD": 3}
    assert s["unique_clients"] == 220
    assert s["minutes"] == 9
    assert s["busiest_minute"] == "2015-05-17 16:05:00+00:00"  # 126 requests
    codes = pd.read_parquet(tmp_path / "status_codes.parquet")
    assert codes["requests"].sum() == 1000
    minute = pd.read_parquet(tmp_path / "per_minute.parquet").set_index("minute")
    assert minute["requests"].max() == 126


def test_bots_are_told_from_humans_as_crawlerdetect_tells_them(tmp_path: Path) -> None:
    bots, unknown = crawler_counts(quoted_agents(APACHE))
    assert (bots, unknown) == (369, 53)
    # awk -F'"' '{print $6}' | grep -ciE 'bot|spider|crawl': the obvious ones
    obvious = sum(
        any(w in line.split('"')[5].lower() for w in ("bot", "spider", "crawl"))
        for line in APACHE.read_text().splitlines()
    )
    assert obvious == 242 < bots
    result = run("applogs", APACHE, tmp_path)
    humans = 1000 - bots - unknown
    assert result.summary["user_agents"] == {"bot": bots, "human": humans, "unknown": 53}
    minutes = pd.read_parquet(tmp_path / "per_minute.parquet")
    assert minutes["bot_requests"].sum() == bots


def test_cloudfront_standard_log_gzip_with_status_000_and_encoded_agents(tmp_path: Path) -> None:
    # zcat | grep -v '^#' | awk -F'\t' '{print $9}' | sort | uniq -c
    result = run("applogs", CLOUDFRONT, tmp_path)
    s = result.summary
    assert s["requests"] == 18
    assert s["status_codes"] == {"0": 1, "200": 16, "404": 1}  # 000: the viewer left
    assert s["user_agents"] == {"bot": 0, "human": 18, "unknown": 0}  # Chrome, %2520-encoded
    minutes = pd.read_parquet(tmp_path / "per_minute.parquet").set_index("minute")
    # time-taken is in seconds: 4.988 s is the slowest of the first minute
    assert minutes["p99_ms"].iloc[0] == pytest.approx(4988, rel=0.02)


def test_cloudfront_header_carries_across_chunks(tmp_path: Path) -> None:
    whole = run("applogs", CLOUDFRONT, tmp_path / "whole")
    small = run("applogs", CLOUDFRONT, tmp_path / "small", chunk_rows=4)
    assert whole.summary == small.summary


def test_alb_phases_add_up_and_minus_one_means_unknown(tmp_path: Path) -> None:
    src = tmp_path / "alb.log"
    lines = ALB.read_text().splitlines()
    # the target never answered: -1 processing times, no target status
    lines.append(
        lines[0]
        .replace("0.000 0.001 0.000 200 200", "0.000 -1 -1 504 -")
        .replace("2018-07-02T22:23:00", "2018-07-02T22:25:00")
    )
    src.write_text("\n".join(lines) + "\n")
    result = run("applogs", src, tmp_path / "out")
    s = result.summary
    assert s["requests"] == 8
    assert s["status_codes"] == {"101": 2, "200": 4, "502": 1, "504": 1}
    assert s["unique_clients"] == 3  # client:port -> client
    minutes = pd.read_parquet(tmp_path / "out" / "per_minute.parquet").set_index("minute")
    first = minutes.iloc[0]
    # 0.086 + 0.048 + 0.037 s = 171 ms is the slowest request of 22:23
    assert first["p99_ms"] == pytest.approx(171, rel=0.02)
    unknown = minutes.loc[pd.Timestamp("2018-07-02T22:25:00Z")]
    assert unknown["requests"] == 1
    assert pd.isna(unknown["p50_ms"])  # its only request had -1 times


def test_s3_server_access_log(tmp_path: Path) -> None:
    result = run("applogs", S3, tmp_path)
    s = result.summary
    assert s["requests"] == 7
    assert s["status_codes"] == {"200": 6, "404": 1}
    assert s["methods"] == {"GET": 6, "PUT": 1}
    paths = pd.read_parquet(tmp_path / "top_paths.parquet")
    assert set(paths["path"]) == {"/mybucket", "/amzn-s3-demo-bucket1", "/mybucket/s3-dg.pdf"}
    minutes = pd.read_parquet(tmp_path / "per_minute.parquet").set_index("minute")
    # total time is in ms: the PUT of 00:01 took 41754 ms
    assert minutes["p99_ms"].max() == pytest.approx(41754, rel=0.02)


def test_nginx_main_with_forwarded_for_and_request_times(tmp_path: Path) -> None:
    base = (
        '10.0.0.2 - - [01/Jun/2024:12:00:{s:02d} +0000] "GET /api/{i} HTTP/1.1" {st} 12 "-"'
        ' "curl/8.0"'
    )
    lines = [
        base.format(s=1, i=1, st=200) + ' "203.0.113.9, 10.0.0.1" 0.120 0.118',
        base.format(s=2, i=2, st=503) + ' "-" 0.300 0.299',
        base.format(s=3, i=3, st=200) + ' "-" rt=0.250 uct="0.001" urt="0.249"',
    ]
    src = tmp_path / "access.log"
    src.write_text("\n".join(lines) + "\n")
    result = run("applogs", src, tmp_path / "out")
    s = result.summary
    assert s["format"] == "clf"
    assert s["unique_clients"] == 2  # 203.0.113.9 (forwarded) and 10.0.0.2
    assert s["error_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert s["user_agents"]["bot"] == 3  # curl is a tool, not a person
    minute = pd.read_parquet(tmp_path / "out" / "per_minute.parquet").iloc[0]
    assert minute["p50_ms"] == pytest.approx(250, rel=0.02)
    assert minute["p99_ms"] == pytest.approx(300, rel=0.02)


def test_json_lines_with_common_names_and_units(tmp_path: Path) -> None:
    lines = [
        '{"@timestamp": "2024-06-01T12:00:01Z", "request": "GET /a?x=1 HTTP/1.1", "response": 200,'
        ' "remote_ip": "1.1.1.1", "agent": "Mozilla/5.0 (compatible; bingbot/2.0)",'
        ' "duration": "12.5ms"}',
        '{"@timestamp": "2024-06-01T12:00:02Z", "request": "POST /b HTTP/1.1", "response": 500,'
        ' "remote_ip": "1.1.1.2", "agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0",'
        ' "duration": "1.5s"}',
        '{"@timestamp": "2024-06-01T12:00:03Z", "request": "GET /a HTTP/1.1", "response": "oops"}',
    ]
    src = tmp_path / "app.jsonl"
    src.write_text("\n".join(lines) + "\n")
    result = run("applogs", src, tmp_path / "out")
    s = result.summary
    assert s["requests"] == 2
    assert s["methods"] == {"GET": 1, "POST": 1}
    assert s["user_agents"] == {"bot": 1, "human": 1, "unknown": 0}
    rejected = pd.read_parquet(tmp_path / "out" / "rejected.parquet")
    assert rejected["reason"].tolist() == ["status: not an HTTP status"]
    minute = pd.read_parquet(tmp_path / "out" / "per_minute.parquet").iloc[0]
    assert minute["p99_ms"] == pytest.approx(1500, rel=0.02)
    assert minute["p50_ms"] == pytest.approx(12.5, rel=0.02)


def test_request_time_in_seconds_by_name(tmp_path: Path) -> None:
    src = tmp_path / "app.jsonl"
    src.write_text(
        '{"time": "2024-06-01T12:00:01Z", "uri": "/", "status_code": 200, "request_time": 0.25}\n'
    )
    run("applogs", src, tmp_path / "out")
    minute = pd.read_parquet(tmp_path / "out" / "per_minute.parquet").iloc[0]
    assert minute["p50_ms"] == pytest.approx(250, rel=0.02)


def test_lines_not_in_the_format_are_rejected_with_the_reason(tmp_path: Path) -> None:
    src = tmp_path / "access.log.gz"
    lines = APACHE.read_text().splitlines()[:50]
    lines.insert(10, "this is not a log line")
    lines.insert(20, lines[0].replace("[17/May/2015:10:05:03 +0000]", "[yesterday]"))
    with gzip.open(src, "wt") as f:
        f.write("\n".join(lines) + "\n")
    result = run("applogs", src, tmp_path / "out")
    assert result.summary["requests"] == 50
    rejected = pd.read_parquet(tmp_path / "out" / "rejected.parquet")
    assert rejected["record"].tolist() == [10, 20]
    assert rejected["reason"].tolist() == [
        "not a Common/Combined Log Format line",
        "time: missing or unparseable",
    ]
    assert rejected["raw"].iloc[0] == "this is not a log line"


def test_the_format_can_be_given(tmp_path: Path) -> None:
    src = tmp_path / "alb.txt"
    shutil.copy(ALB, src)
    assert run_as("elb", src, tmp_path / "alb").summary["requests"] == 7
    wrong = run_as("s3", APACHE, tmp_path / "wrong")
    assert wrong.summary["requests"] == 0
    assert wrong.summary["rejected_rows"] == 1000
    reasons = pd.read_parquet(tmp_path / "wrong" / "rejected.parquet")["reason"].unique()
    assert reasons.tolist() == ["not an S3 server access log line"]
    with pytest.raises(BadDataError, match="accepted: clf, alb, s3, w3c"):
        AppLogsProcessor("syslog")


def test_small_chunks_give_the_same_figures_on_real_lines(tmp_path: Path) -> None:
    whole = run("applogs", APACHE, tmp_path / "whole")
    small = run("applogs", APACHE, tmp_path / "small", chunk_rows=77)
    assert whole.summary == small.summary
    for name in ("per_minute.parquet", "status_codes.parquet", "methods.parquet"):
        a = pd.read_parquet(tmp_path / "whole" / name)
        b = pd.read_parquet(tmp_path / "small" / name)
        pd.testing.assert_frame_equal(a, b)


def test_a_line_with_bytes_that_are_not_utf8_is_rejected_alone(tmp_path: Path) -> None:
    # UTF-8 (the paths hold "ação" in UTF-8), one stray byte that is not
    lines = [
        line.replace(" HTTP/1.1", "/ação HTTP/1.1").encode()
        for line in APACHE.read_text().splitlines()[:30]
    ]
    lines[7] = lines[7].replace(b"Mozilla", b"Mozilla\xff")
    src = tmp_path / "access.log"
    src.write_bytes(b"\n".join(lines) + b"\n")
    result = run("applogs", src, tmp_path / "out")
    assert result.summary["requests"] == 29
    rejected = pd.read_parquet(tmp_path / "out" / "rejected.parquet")
    assert rejected["record"].tolist() == [7]
    assert rejected["reason"].tolist() == ["undecodable bytes for the file's encoding (utf-8)"]


def test_iis_w3c_log_space_separated_time_taken_in_ms(tmp_path: Path) -> None:
    fields = (
        "date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip"
        " cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken"
    )
    rows = [
        "2024-06-01 12:00:01 10.0.0.5 GET /default.htm - 80 - 203.0.113.7"
        " Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64) - 200 0 0 15",
        "2024-06-01 12:00:02 10.0.0.5 POST /api/x a=1 443 - 203.0.113.8"
        " Mozilla/5.0+(compatible;+bingbot/2.0) - 500 0 0 250",
    ]
    src = tmp_path / "u_ex240601.log"
    header = ["#Software: Microsoft Internet Information Services 10.0", "#Version: 1.0"]
    src.write_text("\n".join([*header, f"#Fields: {fields}", *rows]) + "\n")
    result = run("applogs", src, tmp_path / "out")
    s = result.summary
    assert (s["format"], s["requests"], s["rejected_rows"]) == ("w3c", 2, 0)
    assert s["status_codes"] == {"200": 1, "500": 1}
    assert s["user_agents"] == {"bot": 1, "human": 1, "unknown": 0}
    minute = pd.read_parquet(tmp_path / "out" / "per_minute.parquet").iloc[0]
    assert minute["p99_ms"] == pytest.approx(250, rel=0.02)


def test_real_nginx_main_log_of_a_shop_with_forwarded_for_and_local_offset(
    tmp_path: Path,
) -> None:
    assert registry.route(read_sample(NGINX, NGINX.name)).name == "applogs"
    result = run("applogs", NGINX, tmp_path)
    s = result.summary
    # awk '{print $9}' | sort | uniq -c; awk -F'"' '{split($2,a," "); print a[1]}' | ...
    assert (s["format"], s["requests"], s["rejected_rows"]) == ("clf", 1000, 0)
    assert s["status_codes"] == {"200": 938, "301": 11, "302": 20, "304": 7, "404": 24}
    assert s["methods"] == {"GET": 976, "HEAD": 10, "POST": 14}
    # 101 peers, but Google's proxies (66.249.83.x) forward for one client: 96 clients
    assert s["unique_clients"] == 96
    # [22/Jan/2019:03:58 +0330] is 00:28 UTC: 331 requests, the busiest of 4 minutes
    assert s["minutes"] == 4
    assert s["busiest_minute"] == "2019-01-22 00:28:00+00:00"
    minutes = pd.read_parquet(tmp_path / "per_minute.parquet").set_index("minute")
    assert minutes["requests"].tolist() == [242, 287, 331, 140]
    assert minutes["p50_ms"].isna().all()  # the trailing "-" is X-Forwarded-For, no time
    assert crawler_counts(quoted_agents(NGINX)) == (342, 5)
    assert s["user_agents"] == {"bot": 342, "human": 653, "unknown": 5}
    # awk -F'"' '{split($2,a," "); sub(/\?.*/,"",a[2]); print a[2]}' | sort | uniq -c
    paths = pd.read_parquet(tmp_path / "top_paths.parquet")
    assert paths["path"].iloc[0] == "/settings/logo"
    assert paths["requests"].iloc[0] == 34


def iis_agents(src: Path, column: int) -> tuple[int, int, int]:
    """(bots, humans, unknown) of an IIS log, with `+` read as the space IIS wrote."""
    rows = [ln for ln in src.read_text().splitlines() if not ln.startswith("#")]
    bots, unknown = crawler_counts(ln.split(" ")[column].replace("+", " ") for ln in rows)
    return bots, len(rows) - bots - unknown, unknown


def test_real_iis_8_5_log_of_an_ec2_site_with_a_header_per_restart(tmp_path: Path) -> None:
    # IIS writes a #Software/#Version/#Date/#Fields block each time it resumes logging:
    # grep -c '^#Fields' -> 25 blocks for 28 requests
    assert registry.route(read_sample(IIS_EC2, IIS_EC2.name)).name == "applogs"
    result = run("applogs", IIS_EC2, tmp_path)
    s = result.summary
    # grep -v '^#' | awk '{print $12}' | sort | uniq -c; awk '{print $4}'; awk '{print $9}'
    assert (s["format"], s["requests"], s["rejected_rows"]) == ("w3c", 28, 0)
    assert s["status_codes"] == {"200": 9, "304": 8, "404": 11}
    assert s["methods"] == {"GET": 25, "HEAD": 3}
    assert s["unique_clients"] == 12
    assert s["minutes"] == 28  # one request a minute at most
    # Googlebot x4, curl and the Nmap scanner (its agent only matches with `+` as a space)
    assert iis_agents(IIS_EC2, 9) == (6, 10, 12)
    assert s["user_agents"] == {"bot": 6, "human": 10, "unknown": 12}
    minutes = pd.read_parquet(tmp_path / "per_minute.parquet")
    assert minutes["bot_requests"].sum() == 6
    # awk '{print $15}' | sort -n | tail -1: the curl HEAD of 04:18 took 2575 ms
    assert minutes["p99_ms"].max() == pytest.approx(2575, rel=0.02)


def test_real_iis_7_log_with_site_name_and_byte_counts(tmp_path: Path) -> None:
    result = run("applogs", IIS_7, tmp_path)
    s = result.summary
    # grep -v '^#' | awk '{print $12}' | sort | uniq -c; awk '{print $10}' | sort -u | wc -l
    assert (s["format"], s["requests"], s["rejected_rows"]) == ("w3c", 16, 0)
    assert s["status_codes"] == {"200": 7, "304": 3, "404": 6}
    assert s["methods"] == {"GET": 16}
    assert s["unique_clients"] == 8
    assert iis_agents(IIS_7, 10) == (14, 2, 0)  # crawlers but for two Internet Explorers
    assert s["user_agents"] == {"bot": 14, "human": 2, "unknown": 0}
    # awk '{print $1, substr($2,1,5)}' | sort | uniq -c: 12 minutes, four of them with 2
    assert s["minutes"] == 12
    minutes = pd.read_parquet(tmp_path / "per_minute.parquet").set_index("minute")
    assert (minutes["requests"] == 2).sum() == 4
    assert s["busiest_minute"] == "2010-08-15 03:53:00+00:00"  # the first of the four
    # awk '{print $17}' | sort -n | tail -1: time-taken in ms (robots.txt for YandexBot)
    assert minutes["p99_ms"].max() == pytest.approx(1051, rel=0.02)


def test_gzip_alb_log_of_two_members(tmp_path: Path) -> None:
    # ALB delivers .log.gz; two files concatenated are one gzip stream of two members
    src = tmp_path / "123456789012_elasticloadbalancing_us-east-2_app.log.gz"
    src.write_bytes(gzip.compress(ALB.read_bytes()) + gzip.compress(ALB.read_bytes()))
    result = run("applogs", src, tmp_path / "out")
    assert (result.summary["format"], result.summary["requests"]) == ("alb", 14)
