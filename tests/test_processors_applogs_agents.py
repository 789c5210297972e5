"""applogs.agents: the kinds already known are reused, and give the answers a first call gives."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from s3worker.processors.applogs import agents
from s3worker.processors.applogs.agents import BOT, HUMAN, UNKNOWN, classify

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
