"""s3worker.ops.progress: the upload's progress bar on a terminal (one redrawn line) and in a log
(plain lines at most every `interval` seconds), skipped files, and what `close` prints."""

from __future__ import annotations

import io

import pytest
from s3worker.ops import progress as progress_module
from s3worker.ops.progress import BAR_WIDTH, Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_prints_plain_lines_when_not_a_terminal() -> None:
    # Given a progress bar on a non-terminal stream that prints at every step
    stream = io.StringIO()
    progress = Progress(files=2, total_bytes=100, stream=stream, interval=0)
    # When two files' bytes arrive
    progress.advance(50)
    progress.file_done()
    progress.advance(50)
    progress.file_done()
    progress.close()
    # Then each step is its own line, ending at 100%
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert lines[0].startswith("upload [############------------]  50%  0/2 files  50 B/100 B")
    assert lines[-1].startswith("upload [########################] 100%  2/2 files  100 B/100 B")
    assert len(lines) == 5  # four steps and the closing line


def test_a_log_gets_no_line_before_its_interval_has_passed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [100.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: now[0])
    stream = io.StringIO()
    progress = Progress(files=3, total_bytes=300, stream=stream, interval=5.0)

    progress.advance(100)  # at 0 s
    now[0] += 4.9
    progress.file_done()  # 4.9 s: not yet
    assert stream.getvalue() == ""
    now[0] += 0.1
    progress.advance(100)  # 5 s: one line

    assert stream.getvalue().splitlines() == [
        f"upload [{'#' * 16}{'-' * 8}]  67%  1/3 files  200 B/300 B  40 B/s"
    ]


def test_a_terminal_redraws_one_line_and_ends_it_on_close() -> None:
    stream = Terminal()
    progress = Progress(files=1, total_bytes=10, stream=stream, interval=60)

    assert progress.interval == progress_module.TTY_REFRESH_SECONDS  # not the log interval
    progress.advance(10)
    progress.file_done()
    progress.close()

    text = stream.getvalue()
    assert text.startswith("\r")
    assert text.endswith("\n")
    assert text.count("\n") == 1  # every redraw returns to the line's start instead
    assert "100%  1/1 files" in text.rsplit("\r", 1)[-1]


def test_skipped_files_leave_the_bytes_and_are_counted_as_unchanged() -> None:
    stream = io.StringIO()
    progress = Progress(files=2, total_bytes=300, stream=stream, interval=3600)

    progress.skip(200)
    progress.advance(100)
    progress.file_done()
    progress.close()

    (line,) = stream.getvalue().splitlines()
    assert "100%  1/2 files (1 unchanged)  100 B/100 B" in line


def test_nothing_sent_prints_nothing_the_summary_says_it_all() -> None:
    stream = io.StringIO()
    progress = Progress(files=2, total_bytes=30, stream=stream)

    progress.skip(10)
    progress.skip(20)
    progress.close()

    assert stream.getvalue() == ""


@pytest.mark.parametrize(
    ("total", "done", "bar"),
    [
        (0, 0, "#" * BAR_WIDTH),  # nothing to send is done
        (100, -20, "-" * BAR_WIDTH),  # a retry's negative report never goes below 0
        (100, 150, "#" * BAR_WIDTH),  # nor above 100%
    ],
)
def test_the_bar_stays_between_empty_and_full(total: int, done: int, bar: str) -> None:
    progress = Progress(files=1, total_bytes=total, stream=io.StringIO())
    progress.done_bytes = done

    assert progress.line().startswith(f"upload [{bar}]")
