"""The processor contract's helpers: samples, gzip damage, encodings, text, execute, finite."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest
from s3worker.processors.base import (
    DAMAGE_BLOCK,
    SAMPLE_BYTES,
    UNDECODABLE,
    JobContext,
    Processor,
    ProcessResult,
    Sample,
    bound_malloc_arenas,
    codec_of,
    describe_gzip_damage,
    detect_encoding,
    execute,
    finite,
    gzip_damage,
    open_text,
    read_sample,
)

CSV = "data,loja,valor\n2024-01-02,São Paulo,10,5\n"


class Counting(Processor):
    """A processor that writes one output and reports figures JSON cannot hold as they are."""

    name = "counting"
    version = "7"

    def process(self, src: Path, out_dir: Path, ctx: JobContext) -> ProcessResult:
        (out_dir / "lines.txt").write_text(str(len(src.read_text().splitlines())))
        summary = {"lines": 2, "mean": math.nan, "peak": np.float64(math.inf), "key": ctx.key}
        return ProcessResult(summary=summary, rows={"lines.txt": 1})


def test_encoding_detection() -> None:
    assert detect_encoding(b"a,b\n1,2\n") == "utf-8"
    assert detect_encoding("a,b\nJoão,2\n".encode()) == "utf-8"
    assert detect_encoding("a,b\nJoão,2\n".encode("cp1252")) == "cp1252"
    assert detect_encoding(b"\xef\xbb\xbfa,b\n") == "utf-8-sig"
    assert detect_encoding("a,b\n".encode("utf-16")) in ("utf-16-le", "utf-16-be")
    # without a BOM: spelt so that no BOM is skipped (its first character was lost)
    assert detect_encoding("a,b\n1,2\n".encode("utf-16-le")) == "utf-16le"
    # a UTF-8 file with a stray bad byte is still UTF-8 (the row is rejected, not re-read)
    assert detect_encoding("Conceição,João,Médico\xff".encode() + b"\xff") == "utf-8"


def test_utf16_without_a_bom_is_told_by_where_its_zero_bytes_are() -> None:
    assert detect_encoding("a,b\n1,2\n".encode("utf-16-be")) == "utf-16be"
    assert detect_encoding(b"\xfe\xffa") == "utf-16-be"
    assert detect_encoding(b"\x00\x00") == "utf-8"  # too short to say: not UTF-16


def test_as_many_stray_bytes_as_utf8_characters_is_still_utf8() -> None:
    # One "ç" and one byte that is not UTF-8: the file is UTF-8 and loses one row, rather
    # than every accent in it read as cp1252 ("Ã§")
    assert detect_encoding("loja,cidade\n1,Iguaçu\n2,".encode() + b"Paran\xe1\n") == "utf-8"
    assert detect_encoding(b"loja,cidade\n1,Paran\xe1\n") == "cp1252"  # none valid


def test_a_utf8_character_cut_by_the_sample_end_is_not_an_invalid_byte() -> None:
    # The sample ends inside "ç": the first byte of two is not counted as invalid
    assert detect_encoding("Conceição".encode()[:7]) == "utf-8"


def test_codecs_and_the_bom_they_skip() -> None:
    assert codec_of("utf-8-sig") == ("utf-8", 3)
    assert codec_of("utf-16-le") == ("utf-16-le", 2)
    assert codec_of("utf-16le") == ("utf-16le", 0)
    assert codec_of("cp1252") == ("cp1252", 0)


def test_the_sample_text_skips_the_bom_and_decodes_what_it_can() -> None:
    sample = Sample(key="k", head="\ufeffdata,loja\n".encode("utf-16-le"), compressed=False)
    assert sample.encoding == "utf-16-le"
    assert sample.text == "data,loja\n"
    latin = Sample(key="k", head="Situação\n".encode("cp1252"), compressed=False)
    assert (latin.encoding, latin.text) == ("cp1252", "Situação\n")


def test_a_sample_is_the_first_bytes_gunzipped_by_content(tmp_path: Path) -> None:
    body = CSV.encode() * 10_000
    plain, packed = tmp_path / "a.gz", tmp_path / "b.csv"  # names that lie
    plain.write_bytes(body)
    packed.write_bytes(gzip.compress(body))
    a, b = read_sample(plain, "in/a.gz"), read_sample(packed, "in/b.csv")
    assert (a.key, a.compressed, len(a.head)) == ("in/a.gz", False, SAMPLE_BYTES)
    assert (b.compressed, b.head, b.damaged_at) == (True, body[:SAMPLE_BYTES], None)
    assert read_sample(plain, "k", limit=10).head == body[:10]


def test_a_gzip_broken_at_its_start_is_a_sample_with_where_it_broke(tmp_path: Path) -> None:
    src = tmp_path / "x.csv.gz"
    src.write_bytes(b"\x1f\x8b\x08\x00" + b"\xff" * 64)
    sample = read_sample(src, "x.csv.gz")
    assert (sample.head, sample.compressed, sample.damaged_at) == (b"", True, 0)


def test_gzip_damage_is_where_the_stream_breaks(tmp_path: Path) -> None:
    packed = gzip.compress(np.random.default_rng(1).bytes(100_000), compresslevel=1)
    assert len(packed) > 6 * DAMAGE_BLOCK
    whole, cut, broken = tmp_path / "whole.gz", tmp_path / "cut.gz", tmp_path / "broken.gz"
    whole.write_bytes(packed)
    cut.write_bytes(packed[:70_000])
    # a second member whose header is not gzip's (compression method 7)
    broken.write_bytes(packed + b"\x1f\x8b\x07\x00" + b"\x00" * 40)
    assert gzip_damage(whole) is None
    assert gzip_damage(cut) == 70_000  # it ends in the middle of the stream
    # found in the block that holds the bad header, named by where that block starts
    assert gzip_damage(broken) == len(packed) // DAMAGE_BLOCK * DAMAGE_BLOCK


def test_concatenated_members_and_trailing_bytes_are_whole(tmp_path: Path) -> None:
    two, trailing = tmp_path / "two.gz", tmp_path / "trailing.gz"
    two.write_bytes(gzip.compress(b"a,b\n") + gzip.compress(b"1,2\n"))
    trailing.write_bytes(gzip.compress(b"a,b\n") + b"\x00" * 100)
    assert gzip_damage(two) is None
    assert gzip_damage(trailing) is None  # as gzip itself ignores them
    short_second = tmp_path / "short_second.gz"
    first = gzip.compress(b"a,b\n")
    short_second.write_bytes(first + gzip.compress(b"1,2\n" * 1000)[:30])
    assert gzip_damage(short_second) == len(first) + 30  # truncated: damaged where it ends


def test_the_damage_message_says_where_and_what_to_do() -> None:
    assert describe_gzip_damage(12_345, 99_000) == (
        "the gzip stream is corrupt or truncated (found at byte 12,345 of 99,000): "
        "re-upload the complete file (check it with `gzip -t`)"
    )
    assert "(found at byte 7)" in describe_gzip_damage(7)
    assert describe_gzip_damage(None).startswith("the gzip stream is corrupt or truncated: ")


@pytest.mark.parametrize("packed", [False, True])
def test_open_text_gunzips_skips_the_bom_and_marks_bytes_it_cannot_decode(
    tmp_path: Path, packed: bool
) -> None:
    body = b"\xef\xbb\xbf" + "Situação,ok\r\n".encode() + b"bad \xff byte\n"
    src = tmp_path / "in.csv"
    src.write_bytes(gzip.compress(body) if packed else body)
    with open_text(src) as f:
        text = f.read()
    assert text == f"Situação,ok\r\nbad {UNDECODABLE} byte\n"  # newlines as written
    with open_text(src, encoding="cp1252") as f:
        assert f.read().startswith("ï»¿Situa")  # as told: cp1252 has no BOM to skip


def test_execute_writes_the_summary_with_name_version_and_json_safe_figures(
    tmp_path: Path,
) -> None:
    src = tmp_path / "in.csv"
    src.write_text(CSV)
    out = tmp_path / "deep" / "out"  # created by execute
    result = execute(Counting(), src, out, JobContext(key="in/in.csv", size=len(CSV)))
    written = json.loads((out / "summary.json").read_text())
    assert written == {
        "processor": "counting",
        "version": "7",
        "lines": 2,
        "mean": None,
        "peak": None,
        "key": "in/in.csv",
    }
    assert result.summary == {"lines": 2, "mean": None, "peak": None, "key": "in/in.csv"}
    assert result.rows == {"lines.txt": 1}
    assert (out / "lines.txt").read_text() == "2"


def test_finite_replaces_nan_and_infinities_at_any_depth() -> None:
    value = {"a": [1.5, math.nan, (math.inf, -math.inf)], "b": {"c": np.float32(2.5)}, "d": "x"}
    assert finite(value) == {"a": [1.5, None, [None, None]], "b": {"c": 2.5}, "d": "x"}
    assert finite(np.int64(3)) == 3
    assert type(finite(np.int64(3))) is int
    assert finite(None) is None


def test_a_processor_recognises_nothing_unless_it_says_so() -> None:
    assert Counting().sniff(Sample(key="k", head=b"anything", compressed=False)) == 0.0
    assert Counting.version == "7"
    assert JobContext(key="k", size=1).chunk_rows == 250_000


def test_malloc_arenas_can_be_bounded_more_than_once() -> None:
    # glibc takes the bound (no effect where the C library has no mallopt); again is harmless
    bound_malloc_arenas()
    bound_malloc_arenas()
