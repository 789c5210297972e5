"""Sniffing a sample: its text format, its columns, its first rows, and a processor's score."""

from __future__ import annotations

import json

import pytest
from s3worker.processors.base import Sample
from s3worker.processors.sniffing import (
    SNIFF_ROWS,
    Shape,
    delimiter_of,
    detect_format,
    first_record,
    records,
    score,
    shape_of,
)

CLF_LINE = '10.0.0.1 - - [17/May/2015:10:05:03 +0000] "GET /a HTTP/1.1" 200 512 "-" "curl/8"'


def sample(text: str) -> Sample:
    return Sample(key="in/file", head=text.encode(), compressed=False)


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ('[{"a": 1}, {"a": 2}]', "json"),
        ('  \n{"a": 1}\n{"a": 2}\n', "jsonl"),
        ('{\n  "records": [{"a": 1}]\n}', "json"),  # a pretty-printed object: not JSON lines
        ('{"records": [{"a": 1}, {"a": 2}]}\n', "json"),  # a whole document on one line
        ('{"tags": [1]}\n{"tags": [2]}\n', "jsonl"),  # lines that each hold a list
        ("\ufeffa;b\n1;2\n", "csv"),
        (f"{CLF_LINE}\n{CLF_LINE}\nnot a log line\n", "clf"),
        ("hello world\nsecond line\n", "text"),
        ("", "text"),
    ],
)
def test_the_format_comes_from_the_first_bytes(text: str, fmt: str) -> None:
    assert detect_format(text) == fmt


def test_clf_needs_half_the_first_lines_rounded_down() -> None:
    assert detect_format(f"{CLF_LINE}\nx\ny\nz\n") == "text"  # one in four: not a log
    assert detect_format(f"{CLF_LINE}\nx,1\ny,2\n") == "clf"  # one in three is enough


def test_the_delimiter_is_the_most_frequent_of_four() -> None:
    assert delimiter_of("a;b;c,d") == ";"
    assert delimiter_of("a\tb\tc") == "\t"
    assert delimiter_of("a|b") == "|"
    assert delimiter_of("a,b") == ","
    assert delimiter_of("just words") is None


def test_the_first_record_of_an_array_a_wrapper_or_lines() -> None:
    assert first_record('[{"a": 1, "b": 2}, {"c": 3}]') == {"a": 1, "b": 2}
    assert first_record('{"records": [{"id": 7}, {"id": 8}]}') == {"id": 7}
    assert first_record('{"x": 1}\n{"y": 2}') == {"x": 1}
    assert first_record('[{"a": 1') == {}  # cut by the sample's end
    assert first_record('{"records": [{"id": 7}, {"id": 8}, {"i') == {"id": 7}
    assert first_record("[1, 2]") == {}
    assert first_record("no objects") == {}


def test_the_shape_holds_normalised_column_names() -> None:
    csv_shape = shape_of(sample('"Patient ID";Data Consulta;Situação\n1;2;3\n'))
    assert csv_shape == Shape("csv", ("patientid", "dataconsulta", "situacao"))
    assert csv_shape.has(["situacao", "status"])
    assert not csv_shape.has(["status"])
    json_shape = shape_of(sample('[{"Order-Date": "2024-01-01", "storeId": 3}]'))
    assert json_shape == Shape("json", ("orderdate", "storeid"))
    assert shape_of(sample(CLF_LINE)) == Shape("clf", ())


def test_csv_records_keep_names_as_written_and_drop_the_last_line_the_sample_may_cut() -> None:
    fmt, names, rows = records(sample("Store,Total\nA,1\nB,\nC,3\nD,4"))  # "D,4": cut
    assert (fmt, names) == ("csv", ["Store", "Total"])
    assert rows == [["A", "1"], ["B", None], ["C", "3"]]  # an empty cell is None


def test_a_header_or_a_delimiter_given_overrides_the_guess() -> None:
    text = "Ana;Dr Silva;03/06/2024\nBruno;Dra Lima;04/06/2024\nCaio;Dr Silva;05/06/2024\n"
    fmt, names, rows = records(sample(text), header=("patient", "doctor", "date"))
    assert (fmt, names) == ("csv", ["patient", "doctor", "date"])
    assert rows == [["Ana", "Dr Silva", "03/06/2024"], ["Bruno", "Dra Lima", "04/06/2024"]]
    _, names, rows = records(sample("a,b|c\n1,2|3\n4,5|6"), delimiter="|")
    assert (names, rows) == (["a,b", "c"], [["1,2", "3"]])


def test_json_lines_records_are_every_key_seen_with_values_as_text() -> None:
    lines = [
        {"id": 1, "tags": ["a"], "ok": True},
        "not an object",
        {"id": 2.5, "extra": None, "meta": {"k": 1}},
    ]
    text = "\n".join(json.dumps(x) for x in lines) + "\n{broken\n"
    fmt, names, rows = records(sample(text))
    assert (fmt, names) == ("jsonl", ["id", "tags", "ok", "extra", "meta"])
    assert rows == [["1", '["a"]', "true", None, None], ["2.5", None, None, None, '{"k": 1}']]


def test_a_json_array_and_a_records_wrapper_give_their_objects() -> None:
    _, names, rows = records(sample('[{"a": 1}, 5, {"a": 2, "b": "x"}]'))
    assert (names, rows) == (["a", "b"], [["1", None], ["2", "x"]])
    _, names, rows = records(sample('{"data": [{"a": 1}, {"a": 2}]}'))
    assert (names, rows) == (["a"], [["1"], ["2"]])


def test_a_wrapper_cut_by_the_sample_end_is_read_inside() -> None:
    text = '{"data": [' + ", ".join(json.dumps({"n": i}) for i in range(3)) + ', {"n": '
    _, names, rows = records(sample(text))
    assert (names, rows) == (["n"], [["0"], ["1"], ["2"]])
    assert shape_of(sample(text)) == Shape("json", ("n",))
    _, names, rows = records(sample(text.replace("[", "[\n  ", 1)))  # pretty-printed
    assert (names, len(rows)) == (["n"], 3)


def test_records_stop_at_the_sniffing_limit_and_text_has_none() -> None:
    many = "[" + ", ".join(json.dumps({"i": i}) for i in range(SNIFF_ROWS + 50)) + "]"
    assert len(records(sample(many))[2]) == SNIFF_ROWS
    body = "h\n" + "".join(f"{i}\n" for i in range(SNIFF_ROWS + 50))
    assert len(records(sample("a,b\n" + body.replace("\n", ",x\n")))[2]) == SNIFF_ROWS
    assert records(sample("plain words here\n")) == ("text", [], [])


def test_the_score_rewards_required_then_optional_columns() -> None:
    shape = Shape("csv", ("date", "store", "total"))
    required, optional = [["date"], ["total", "amount"]], [["store"], ["product"]]
    assert score(shape, required, optional) == pytest.approx(0.825)  # one optional of two
    assert score(shape, required, []) == pytest.approx(0.95)
    assert score(shape, [*required, ["quantity"]], optional) == 0.0
    assert score(Shape("jsonl", shape.columns), required, [["store"]]) == pytest.approx(0.95)
    assert score(Shape("text", shape.columns), required, optional) == 0.0
