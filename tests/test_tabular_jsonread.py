"""JSON lines and JSON arrays read record by record: bad records as rejects, cells as text."""

from __future__ import annotations

import io

import pytest
from s3worker.errors import BadDataError
from s3worker.processors.base import UNDECODABLE
from s3worker.processors.tabular import jsonread
from s3worker.processors.tabular.jsonread import (
    json_array_records,
    jsonl_records,
    records_to_chunks,
)
from s3worker.processors.tabular.rows import Reject, undecodable


def _reasons(records: list[object]) -> list[str]:
    return [r.reason for r in records if isinstance(r, Reject)]


def test_jsonl_records_decode_and_skip_blank_lines() -> None:
    f = io.StringIO('{"a": 1}\n\n  \n{"a": 2, "b": "x"}\n')
    assert list(jsonl_records(f, "utf-8")) == [{"a": 1}, {"a": 2, "b": "x"}]


def test_jsonl_bad_lines_are_rejects_that_name_their_line() -> None:
    # given an invalid line 2 and a line 3 with undecodable bytes
    f = io.StringIO('{"a": 1}\n{"a": \n{"a": "J' + UNDECODABLE + 'o"}\n{"a": 4}\n')
    records = list(jsonl_records(f, "cp1252"))
    # then the good records come, and each bad one is a reject saying why and where
    assert [r for r in records if not isinstance(r, Reject)] == [{"a": 1}, {"a": 4}]
    reasons = _reasons(records)
    assert reasons[0].startswith("invalid JSON on line 2: Expecting value")
    assert reasons[1] == f"{undecodable('cp1252')} on line 3"
    assert records[2].raw == '{"a": "J\ufffdo"}'  # type: ignore[union-attr]


def test_jsonl_line_past_the_limit_is_a_reject(monkeypatch: pytest.MonkeyPatch) -> None:
    # bounded_lines reads at most MAX_LINE_CHARS: a small limit stands in for 8 MiB here
    real = jsonread.bounded_lines
    monkeypatch.setattr(jsonread, "bounded_lines", lambda f: real(f, 16))
    records = list(jsonl_records(io.StringIO('{"a": "' + "x" * 40 + '"}\n{"b": 1}\n'), "utf-8"))
    assert _reasons(records) == ["line 1 is longer than 8 MiB characters"]
    assert records[1] == {"b": 1}


def test_array_elements_come_one_by_one_across_buffer_edges(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given an array read 7 characters at a time: elements (and a number) cut by refills
    monkeypatch.setattr(jsonread, "JSON_BLOCK_CHARS", 7)
    text = '\ufeff [ {"id": 1, "v": 12345678}, {"id": 2},\n 3.25 , "s" ]'
    records = list(json_array_records(io.StringIO(text), "utf-8"))
    assert records == [{"id": 1, "v": 12345678}, {"id": 2}, 3.25, "s"]


def test_an_array_element_with_undecodable_bytes_is_a_reject() -> None:
    text = '[{"a": "ok"}, {"a": "J' + UNDECODABLE + 'o"}, {"a": "fine"}]'
    records = list(json_array_records(io.StringIO(text), "latin-1"))
    assert records[0] == {"a": "ok"}
    assert records[2] == {"a": "fine"}
    assert isinstance(records[1], Reject)
    assert records[1].reason == undecodable("latin-1")
    assert records[1].raw == '{"a": "J\ufffdo"}'


def test_a_broken_array_is_bad_data() -> None:
    with pytest.raises(BadDataError, match="invalid JSON array"):
        list(json_array_records(io.StringIO('[{"a": 1}, {"a": '), "utf-8"))


def test_an_element_larger_than_the_limit_is_bad_data(monkeypatch: pytest.MonkeyPatch) -> None:
    # given an element that never ends, past a limit of 2 MiB (64 MiB in production)
    monkeypatch.setattr(jsonread, "MAX_JSON_VALUE_CHARS", 2 << 20)
    text = '[{"a": "' + "x" * (3 << 20)
    with pytest.raises(BadDataError, match="larger than 2 MiB characters"):
        list(json_array_records(io.StringIO(text), "utf-8"))


def test_an_object_holding_one_list_gives_that_list() -> None:
    text = '{"meta": {"n": 2}, "records": [{"a": 1}, {"a": 2}]}'
    assert list(json_array_records(io.StringIO(text), "utf-8")) == [{"a": 1}, {"a": 2}]


def test_a_single_object_or_one_with_two_lists_is_one_record() -> None:
    one = '{"a": 1}'
    two = '{"x": [1], "y": [2]}'
    assert list(json_array_records(io.StringIO(one), "utf-8")) == [{"a": 1}]
    assert list(json_array_records(io.StringIO(two), "utf-8")) == [{"x": [1], "y": [2]}]


def test_a_document_that_is_not_json_is_bad_data() -> None:
    with pytest.raises(BadDataError, match="invalid JSON: "):
        list(json_array_records(io.StringIO("{nope"), "utf-8"))


def test_records_become_chunks_of_text_columns_in_first_seen_order() -> None:
    # given objects with different keys, typed values, a non-object and a reject
    bad = Reject(None, "invalid JSON on line 3: x", "{")
    records: list[object] = [
        {"a": 1, "b": True},
        {"b": False, "c": {"k": [1]}, "a": None},
        bad,
        [1, 2],
        {"c": 2.5, "d": "s"},
    ]
    # when cut into chunks of 2 records
    chunks = list(records_to_chunks(iter(records), 2))
    # then every cell is text (null where absent), rejects go with the chunk they came in
    assert [c.start for c in chunks] == [0, 2]
    assert chunks[0].table.to_pydict() == {
        "a": ["1", None],
        "b": ["true", "false"],
        "c": [None, '{"k": [1]}'],
    }
    assert chunks[0].rejects == []
    assert chunks[1].table.to_pydict() == {"c": ["2.5"], "d": ["s"]}
    assert chunks[1].rejects == [bad, Reject(None, "not a JSON object", "[1, 2]")]


def test_only_rejects_still_make_a_chunk() -> None:
    chunks = list(records_to_chunks(iter([42]), 10))
    assert len(chunks) == 1
    assert chunks[0].table.num_rows == 0
    assert chunks[0].rejects == [Reject(None, "not a JSON object", "42")]
    assert list(records_to_chunks(iter([]), 10)) == []


def test_a_number_cut_at_the_buffer_edge_is_read_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    # given blocks of 4 characters: the first ends inside 123456 ("[123")
    monkeypatch.setattr(jsonread, "JSON_BLOCK_CHARS", 4)
    records = list(json_array_records(io.StringIO("[123456, 7]"), "utf-8"))
    assert records == [123456, 7]
