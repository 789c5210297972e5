"""Bots or humans from the user agent: CrawlerDetect's answers, through RE2, per request."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pytest
from crawlerdetect import CrawlerDetect
from s3worker.processors.applogs import agents
from s3worker.processors.applogs.agents import BOT, HUMAN, UNKNOWN, bot_patterns, classify

AGENTS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_1) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/32.0.1700.77 Safari/537.36",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "curl/7.46.0",
    "python-requests/2.31.0",
    "Mozilla/5.0 (Linux; Android 10) YandexSearch/8.10",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "UniversalFeedParser/4.2-pre-314-svn +http://feedparser.org/",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
]


def test_bot_classification_matches_crawlerdetect() -> None:
    kinds = classify(pa.chunked_array([pa.array([*AGENTS, "-", "", None])]))
    detector = CrawlerDetect()
    assert [k == BOT for k in kinds[: len(AGENTS)]] == [detector.is_crawler(a) for a in AGENTS]
    assert [kinds[0], kinds[1], kinds[4], kinds[5]] == [HUMAN, BOT, HUMAN, BOT]
    assert (kinds[len(AGENTS) :] == UNKNOWN).all()


def test_one_answer_per_request_across_chunks_and_repeats() -> None:
    # Given repeated agents spread over several chunks, a blank one among them
    bot, human = AGENTS[1], AGENTS[0]
    agents = pa.chunked_array([[bot, human], ["  ", bot, None], [human, " curl/8.0 "]])
    # Then each request gets its own answer, in order (padding does not hide a bot)
    kinds = classify(agents)
    assert kinds.dtype == np.int8
    assert kinds.tolist() == [BOT, HUMAN, UNKNOWN, BOT, UNKNOWN, HUMAN, BOT]


def test_the_lookahead_becomes_an_exclusion_of_what_it_excluded() -> None:
    # RE2 has no look-ahead: `Yandex(?!Search)` becomes "strip YandexSearch, then Yandex"
    exclusions, crawlers = bot_patterns()
    assert "(?!" not in exclusions + crawlers
    assert re.search(exclusions, "Mozilla/5.0 YandexSearch/8.10")
    assert re.search(crawlers, "YandexBot/3.0")
    kinds = classify(pa.chunked_array([["YandexSearch/8.10", "Yandex/1.0", "YandexBot/3.0"]]))
    assert kinds.tolist() == [HUMAN, BOT, BOT]


def test_a_browser_agent_is_human_and_an_empty_log_an_empty_answer() -> None:
    assert classify(pa.chunked_array([AGENTS[-1:]])).tolist() == [HUMAN]
    assert classify(pa.chunked_array([], pa.string())).tolist() == []


CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def _agents(*values: str | None) -> pa.ChunkedArray:
    return pa.chunked_array([pa.array(list(values), pa.string())])


def test_known_agents_are_not_matched_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # given: a first chunk that leaves its agents known
    monkeypatch.setattr(agents, "_known", {})
    first = classify(_agents(CHROME, GOOGLEBOT, "-", None))
    matched: list[int] = []
    original = agents._classify_distinct

    def counting(distinct: pa.Array) -> np.ndarray:
        matched.append(len(distinct))
        return original(distinct)

    monkeypatch.setattr(agents, "_classify_distinct", counting)
    # when: a later chunk repeats them beside a new one
    later = classify(_agents(GOOGLEBOT, "curl/8.5.0", CHROME, "-"))
    # then: only the new agent is matched, and every answer is what a first call gives
    assert matched == [1]
    assert first.tolist() == [HUMAN, BOT, UNKNOWN, UNKNOWN]
    assert later.tolist() == [BOT, BOT, HUMAN, UNKNOWN]


def test_a_full_cache_is_cleared_and_still_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agents, "_known", {})
    monkeypatch.setattr(agents, "KNOWN_LIMIT", 2)
    assert classify(_agents(CHROME, GOOGLEBOT)).tolist() == [HUMAN, BOT]
    assert classify(_agents("curl/8.5.0", CHROME)).tolist() == [BOT, HUMAN]
    assert len(agents._known) <= 2
