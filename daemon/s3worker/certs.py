"""aiohttp's default TLS contexts, with their CA certificates loaded at READY=1, not before.

Importing aiohttp builds its two default SSLContexts (aiohttp/connector.py), and each loads the
system's CA certificates: about a fifth of the daemon's CPU before READY=1 (470 of 2,560 million
instructions, callgrind). The daemon uses neither before READY=1: its AWS clients bring their own
context (aws.py) and the instance metadata service is plain HTTP. So `s3worker run` imports
aiohttp with that load noted instead of done (`import_aiohttp`), and the daemon makes it at
READY=1 (`load_deferred`), in a thread (OpenSSL's load runs without the GIL): from then on the
contexts hold exactly what they would have held.
"""

from __future__ import annotations

import ssl
import sys
import threading

_deferred: list[ssl.SSLContext] = []


def _note(context: ssl.SSLContext) -> None:
    _deferred.append(context)


def import_aiohttp() -> None:
    """Import aiohttp, the default verify paths of the contexts it builds meanwhile noted for
    `load_deferred`. Nothing when aiohttp is imported already."""
    if "aiohttp" in sys.modules:
        return
    load = ssl.SSLContext.set_default_verify_paths
    ssl.SSLContext.set_default_verify_paths = _note  # type: ignore[method-assign,assignment]
    try:
        import aiohttp  # noqa: F401
    finally:
        ssl.SSLContext.set_default_verify_paths = load  # type: ignore[method-assign]


def load_deferred() -> threading.Thread | None:
    """Load what `import_aiohttp` put off, in a thread of its own (returned, for a caller that
    must wait); None when nothing was put off."""
    contexts = list(_deferred)
    _deferred.clear()
    if not contexts:
        return None
    thread = threading.Thread(target=_load, args=(contexts,), name="ca-certificates", daemon=True)
    thread.start()
    return thread


def _load(contexts: list[ssl.SSLContext]) -> None:
    for context in contexts:
        context.set_default_verify_paths()
