"""certs.py: aiohttp imported by `s3worker run` with its default contexts' CA certificates
loaded at READY=1 (worker.at_ready), not at import. In fresh interpreters: the test process
has imported aiohttp long since."""

from __future__ import annotations

import json
import subprocess
import sys

# The two default contexts aiohttp builds at import (aiohttp/connector.py).
STATS = """
from aiohttp import connector
print(json.dumps([connector._SSL_CONTEXT_VERIFIED.cert_store_stats(),
                  connector._SSL_CONTEXT_UNVERIFIED.cert_store_stats()]))
"""


def run(code: str) -> list[list[dict[str, int]]]:
    out = subprocess.run(
        [sys.executable, "-c", "import json, threading\n" + code],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_the_default_contexts_get_their_certificates_at_ready_not_at_import() -> None:
    # Given aiohttp's contexts as a plain import builds them (the machine has CA certificates)
    [plain] = run("import aiohttp\n" + STATS)
    assert plain[0]["x509_ca"] > 0
    # When `s3worker run` imports aiohttp, and later reaches READY=1
    ready = (
        "from s3worker.worker import at_ready\n"
        "at_ready()\n"
        "[t.join() for t in threading.enumerate() if t is not threading.main_thread()]\n"
    )
    at_import, at_ready = run(
        "from s3worker import certs\ncerts.import_aiohttp()\n" + STATS + ready + STATS
    )
    # Then nothing was loaded at import, and from READY=1 they hold what a plain import loads
    assert [stats["x509_ca"] for stats in at_import] == [0, 0]
    assert at_ready == plain


def test_an_aiohttp_imported_already_is_left_as_it_is() -> None:
    # Given aiohttp imported before (its contexts loaded as usual)
    [plain] = run("import aiohttp\n" + STATS)
    # When import_aiohttp comes after it, then nothing is put off and nothing loaded twice
    [after] = run(
        "import aiohttp\nfrom s3worker import certs\ncerts.import_aiohttp()\n"
        "assert certs.load_deferred() is None\n" + STATS
    )
    assert after == plain
