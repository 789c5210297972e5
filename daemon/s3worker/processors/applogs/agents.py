"""Bots or humans, from the user agent, with CrawlerDetect's curated patterns.

`crawlerdetect` (MIT, no dependencies, updated with the upstream JayBizzle/CrawlerDetect
list of ~1,500 crawler, monitor, scanner and HTTP-library signatures plus a generic
`bot|crawl|spider|...` catch-all) decides what a bot is. Its own `is_crawler` runs Python's
`re` over one huge alternation, about 0.9 ms per user agent; here the same patterns run
through RE2 (pyarrow) over each chunk's distinct user agents at once, about 15 µs each,
with the same answers (its one look-ahead, `Yandex(?!Search)`, which RE2 lacks, becomes an
exclusion of `YandexSearch` and the pattern `Yandex`).
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from crawlerdetect.providers.crawlers import data as CRAWLERS  # type: ignore[import-untyped]
from crawlerdetect.providers.exclusions import data as EXCLUSIONS  # type: ignore[import-untyped]

BOT, HUMAN, UNKNOWN = 1, 0, -1
LOOKAHEAD = re.compile(r"(.*)\(\?!([^()]*)\)")
# User agents already told apart, shared by the jobs of a process: a log repeats the same
# few thousand agents, and the patterns cost ~13 ms a call to compile whatever they match.
# Cleared when full, so memory stays bounded whatever the logs hold.
KNOWN_LIMIT = 100_000
_known: dict[str, int] = {}


@lru_cache(maxsize=1)
def bot_patterns() -> tuple[str, str]:
    """(exclusions, crawlers) as two RE2 alternations."""
    exclusions, crawlers = list(EXCLUSIONS), []
    for pattern in CRAWLERS:
        lookahead = LOOKAHEAD.fullmatch(pattern)
        if lookahead:  # X(?!Y): strip XY first, then X alone is a bot
            exclusions.append(lookahead[1] + lookahead[2])
            crawlers.append(lookahead[1])
        else:
            crawlers.append(pattern)
    return "(?i)(?:" + "|".join(exclusions) + ")", "(?:" + "|".join(crawlers) + ")"


def classify(agents: pa.ChunkedArray) -> npt.NDArray[np.int8]:
    """Per request: BOT, HUMAN, or UNKNOWN when the log has no user agent (`-`, empty)."""
    enc = pc.dictionary_encode(agents).combine_chunks()
    kinds = np.append(_kinds_of(enc.dictionary), np.int8(UNKNOWN))
    codes = pc.fill_null(enc.indices, len(enc.dictionary))
    return kinds[np.asarray(codes.to_numpy(zero_copy_only=False), dtype=np.int64)]


def _kinds_of(distinct: pa.Array) -> npt.NDArray[np.int8]:
    """The kind of each distinct agent, from what is known, the new ones classified."""
    values = distinct.to_pylist()
    kinds = np.array([_known.get(v, 2) for v in values], dtype=np.int8)  # 2: not known
    new = np.flatnonzero(kinds == 2)
    if new.size:
        kinds[new] = _classify_distinct(distinct.take(pa.array(new)))
        if len(_known) + new.size > KNOWN_LIMIT:
            _known.clear()
        _known.update(zip([values[i] for i in new.tolist()], kinds[new].tolist(), strict=True))
    return kinds


def _classify_distinct(agents: pa.Array) -> npt.NDArray[np.int8]:
    exclusions, crawlers = bot_patterns()
    trimmed = pc.utf8_trim_whitespace(agents)
    stripped = pc.utf8_trim_whitespace(pc.replace_substring_regex(trimmed, exclusions, ""))
    bot = pc.match_substring_regex(stripped, crawlers, ignore_case=True)
    # Nothing left once the browser tokens are removed: a plain browser, not a bot.
    bot = pc.and_(bot, pc.not_equal(stripped, ""))
    unknown = pc.is_in(trimmed, value_set=pa.array(["", "-"]))
    out = np.where(np.asarray(bot.to_numpy(zero_copy_only=False), dtype=bool), BOT, HUMAN)
    out[np.asarray(unknown.to_numpy(zero_copy_only=False), dtype=bool)] = UNKNOWN
    return out.astype(np.int8)
