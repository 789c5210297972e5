"""The garbage collector through the daemon's start-up: off until READY=1, then on again with
what start-up allocated frozen.

Start-up allocates objects that live as long as the process (the modules, botocore's service
models, the clients): collecting them again and again costs about a tenth of the time to
READY=1 (importing the daemon: 0.444 CPU-s with the collector off, 0.497 with it on). Frozen at
READY=1, they are never walked again; the collector works on what each file allocates.
"""

from __future__ import annotations

import gc


def pause() -> None:
    """At the start of `s3worker run`, before the daemon's imports."""
    gc.disable()


def resume_frozen() -> None:
    """At READY=1: what exists now stays for the process's life; collect from here on."""
    gc.freeze()
    gc.enable()


def release() -> None:
    """Whatever happened (start-up failed, the daemon ended, a test ran it): collection on."""
    gc.enable()
