"""The processor contract: plain synchronous code, a local file in, output files out.

Processors run in a worker process (never on the event loop) and know nothing of AWS or
asyncio. A module that defines one must not import pandas at import time: the daemon's
main process imports every processor to route files and must stay light to start fast.
"""

from __future__ import annotations

import abc
import codecs
import ctypes
import functools
import gzip
import io
import json
import math
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from s3worker.contract import SUMMARY_NAME
from s3worker.processors.options import Options

GZIP_MAGIC = b"\x1f\x8b"
SAMPLE_BYTES = 64 * 1024
DAMAGE_BLOCK = 16 * 1024
# Byte-order marks, longest first; the encoding named is the one reported in summaries.
BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
# What a byte the detected encoding cannot decode becomes in decoded text: a lone surrogate,
# which no valid text holds, so the reader can reject exactly the rows that carry one.
UNDECODABLE = "\udcff"
UNDECODABLE_ERRORS = "s3worker-undecodable"
INVALID_UTF8 = re.compile("[\udc80-\udcff]")  # bytes `surrogateescape` could not decode
MULTIBYTE_UTF8 = re.compile("[^\x00-\x7f\udc80-\udcff]")


def _mark_undecodable(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return UNDECODABLE, exc.end


codecs.register_error(UNDECODABLE_ERRORS, _mark_undecodable)


@dataclass(frozen=True)
class Sample:
    """What routing may look at: the key (as metadata only) and the first bytes, gunzipped."""

    key: str
    head: bytes
    compressed: bool
    damaged_at: int | None = None  # gzip: compressed offset where the stream broke, if it did

    # Cached: every processor's sniff reads them (a frozen dataclass still has a __dict__).
    @functools.cached_property
    def encoding(self) -> str:
        return detect_encoding(self.head)

    @functools.cached_property
    def text(self) -> str:
        codec, bom = codec_of(self.encoding)
        return self.head[bom:].decode(codec, errors="replace")


@dataclass(frozen=True)
class JobContext:
    """What a processor knows about its input besides the bytes."""

    key: str
    size: int
    chunk_rows: int = 250_000
    sample: Sample | None = None  # what routing read: the worker does not read it again
    options: Options = field(default_factory=Options)


@dataclass
class ProcessResult:
    """A processor's answer: headline figures and the row count of each output it wrote."""

    summary: dict[str, Any]
    rows: dict[str, int] = field(default_factory=dict)


class Processor(abc.ABC):
    """Base class of every processor, built in or registered through an entry point."""

    name: ClassVar[str]
    version: ClassVar[str] = "1"

    def sniff(self, sample: Sample) -> float:
        """Confidence in [0, 1] that this processor understands the sample. Must be cheap."""
        return 0.0

    @abc.abstractmethod
    def process(self, src: Path, out_dir: Path, ctx: JobContext) -> ProcessResult:
        """Read `src`, write outputs under `out_dir` (not summary.json), return the result."""


def read_sample(path: Path, key: str, limit: int = SAMPLE_BYTES) -> Sample:
    """The first `limit` bytes of a local file, decompressed when it is gzip (by content)."""
    with path.open("rb") as f:
        head = f.read(limit)
    if not head.startswith(GZIP_MAGIC):
        return Sample(key=key, head=head, compressed=False)
    with path.open("rb") as f:
        raw = f.read(limit * 4)
    inflate = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
    try:
        text = inflate.decompress(raw, limit)
    except zlib.error:
        return Sample(key=key, head=b"", compressed=True, damaged_at=gzip_damage(path))
    return Sample(key=key, head=text, compressed=True)


def gzip_damage(path: Path) -> int | None:
    """Where reading a gzip file fails (to DAMAGE_BLOCK bytes), or None if it is whole.

    Streams the file through zlib, keeping nothing: it runs only once reading has failed.
    """
    inflate = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
    offset, pending = 0, False
    with path.open("rb") as f:
        while block := f.read(DAMAGE_BLOCK):
            data = block
            try:
                while data:
                    inflate.decompress(data, 1 << 20)
                    pending, data = True, inflate.unconsumed_tail
                    if inflate.eof:  # a member ends: another may follow (concatenated gzip)
                        data, pending = inflate.unused_data, False
                        inflate = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
                        if data and not data.startswith(GZIP_MAGIC):
                            return None  # bytes after a whole member: gzip ignores them too
            except zlib.error:
                return offset
            offset += len(block)
    return offset if pending else None


def describe_gzip_damage(offset: int | None, size: int | None = None) -> str:
    """What to tell the user about a broken gzip file."""
    of = f" of {size:,}" if size is not None else ""
    where = f" (found at byte {offset:,}{of})" if offset is not None else ""
    return (
        f"the gzip stream is corrupt or truncated{where}: re-upload the complete file "
        "(check it with `gzip -t`)"
    )


def detect_encoding(head: bytes) -> str:
    """`utf-8`, `utf-8-sig`, `utf-16-le`/`-be` (with a BOM), `utf-16le`/`be` (without one) or
    `cp1252`, from a file's first bytes.

    A BOM decides; then UTF-8 unless the sample has more invalid sequences than valid
    multi-byte ones (a UTF-8 file with a stray bad byte stays UTF-8 and loses one row);
    else cp1252, the Windows superset of latin-1 that Brazilian exports use and that
    decodes all but five byte values.
    """
    for bom, name in BOMS:
        if head.startswith(bom):
            return name
    sample = head[:4096]
    if len(sample) >= 8 and sample.count(0) >= len(sample) // 4:  # UTF-16 without a BOM
        # Spelt without the inner hyphen: `codec_of` skips no BOM for these.
        return "utf-16le" if sample[1::2].count(0) > sample[0::2].count(0) else "utf-16be"
    text = codecs.getincrementaldecoder("utf-8")("surrogateescape").decode(head, final=False)
    invalid = len(INVALID_UTF8.findall(text))
    if not invalid:
        return "utf-8"
    valid = len(MULTIBYTE_UTF8.findall(text))
    return "utf-8" if valid >= invalid else "cp1252"


def codec_of(encoding: str) -> tuple[str, int]:
    """The Python codec that decodes what follows the BOM, and the BOM's length."""
    bom = next((len(b) for b, name in BOMS if name == encoding), 0)
    return ("utf-8" if encoding == "utf-8-sig" else encoding), bom


def open_text(path: Path, encoding: str | None = None) -> Any:
    """Open a local input as text, gunzipping it and detecting its encoding (by content).

    Bytes the encoding cannot decode read as `UNDECODABLE`; the BOM, if any, is skipped.
    """
    codec, bom = codec_of(encoding or read_sample(path, path.name).encoding)
    with path.open("rb") as f:
        magic = f.read(2)
    raw: Any = gzip.open(path, "rb") if magic == GZIP_MAGIC else path.open("rb")  # noqa: SIM115 closed with the wrapper
    raw.read(bom)
    return io.TextIOWrapper(raw, encoding=codec, errors=UNDECODABLE_ERRORS, newline="")


# glibc's mallopt parameter for the most malloc arenas (heaps) a process may have, and ours.
M_ARENA_MAX = -8
MALLOC_ARENAS = 1


def bound_malloc_arenas(arenas: int = MALLOC_ARENAS) -> None:
    """At most `arenas` glibc malloc heaps in this process, for the arenas made after it.

    numpy's arrays come from malloc (Arrow's from its own pool). glibc gives a thread that
    finds the heaps busy a heap of its own, up to 8 a core, and every heap keeps chunk-sized
    buffers freed in it for reuse by its threads: a job's stages each run on a thread of
    their own. With one heap the appointments processor's peak RSS at 0.5 GiB was 659 MiB
    in 3 runs of 3, against 688-702 MiB, for no more CPU. Nothing where the C library has
    no `mallopt`."""
    mallopt = _libc_call("mallopt")
    if mallopt is not None:
        mallopt(M_ARENA_MAX, arenas)


def _libc_call(name: str) -> Any:
    """The C library's function `name`, or None where it has none (not glibc)."""
    try:
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None


def execute(processor: Processor, src: Path, out_dir: Path, ctx: JobContext) -> ProcessResult:
    """Run a processor and write its summary.json. This is what the worker pool calls."""
    bound_malloc_arenas()
    out_dir.mkdir(parents=True, exist_ok=True)
    result = processor.process(src, out_dir, ctx)
    summary = {"processor": processor.name, "version": processor.version, **result.summary}
    result.summary = finite(result.summary)
    text = json.dumps(finite(summary), indent=2, default=str, allow_nan=False)
    (out_dir / SUMMARY_NAME).write_text(text + "\n")
    return result


def finite(value: Any) -> Any:
    """`value` with NaN and infinities (which JSON cannot hold) as None, at any depth."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return finite(value.item())
    return value
