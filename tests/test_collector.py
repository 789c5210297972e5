"""collector.py: the garbage collector off through start-up, on again from READY=1."""

from __future__ import annotations

import gc

from s3worker import collector


def test_paused_until_ready_then_on_with_what_exists_frozen() -> None:
    # Given the collector paused, as `s3worker run` starts
    collector.pause()
    assert not gc.isenabled()
    frozen = gc.get_freeze_count()
    keep = [object() for _ in range(10)]  # what start-up allocates
    try:
        # When READY=1 is sent
        collector.resume_frozen()
        # Then collection is on, and what existed is frozen (never walked again)
        assert gc.isenabled()
        assert gc.get_freeze_count() > frozen
    finally:
        gc.unfreeze()
        collector.release()
    assert keep


def test_release_turns_collection_on_without_freezing() -> None:
    collector.pause()
    frozen = gc.get_freeze_count()
    collector.release()
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen
