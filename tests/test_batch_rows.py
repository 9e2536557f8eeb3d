"""Batch rows the ERP gets slightly wrong: each refused with its own reason, none silently reshaped."""

from __future__ import annotations

from pathlib import Path

import pytest

from xoromail_cli.compose.events import EVENTS
from xoromail_cli.errors import DataError
from xoromail_cli.sending.batch import InvalidRow, SendJob, jobs_from_file

EVENT = EVENTS["order-release"]


def _rows(path: Path) -> list[SendJob | InvalidRow]:
    return list(jobs_from_file(EVENT, path, {}))


def _one_row(tmp_path: Path, value: str) -> Path:
    path = tmp_path / "rows.jsonl"
    path.write_text(f'{{"to": "a@x.test", "order_number": 1, "customer_name": {value}}}\n', encoding="utf-8")
    return path


@pytest.mark.parametrize(("value", "reason"), [("true", "not true/false"), ("false", "not true/false"),
                                               ('{"a": 1}', "not dict")])
def test_a_boolean_or_object_value_makes_the_row_invalid(tmp_path: Path, value: str, reason: str) -> None:
    rows = _rows(_one_row(tmp_path, value))
    assert isinstance(rows[0], InvalidRow)
    assert reason in rows[0].error.message


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused_at_their_line(tmp_path: Path, value: str) -> None:
    with pytest.raises(DataError, match=f"line 1: {value} is not a number"):
        _rows(_one_row(tmp_path, value))


def test_a_repeated_key_in_a_json_row_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"to": "a@x.test", "to": "b@x.test", "order_number": 1, "customer_name": "A"}\n')
    with pytest.raises(DataError, match="to appear more than once"):
        _rows(path)


def test_a_json_array_file_is_refused_with_use_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "rows.json"
    path.write_text('\n[{"to": "a@x.test", "order_number": 1, "customer_name": "A"}]\n')
    with pytest.raises(DataError, match="JSON array") as caught:
        _rows(path)
    assert "use JSON Lines" in (caught.value.hint or "")


def test_finite_numbers_still_pass(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"to": "a@x.test", "order_number": 1.5, "customer_name": "A"}\n')
    rows = _rows(path)
    assert isinstance(rows[0], SendJob) and rows[0].variables["order_number"] == 1.5


def test_an_unclosed_quote_in_a_csv_names_the_quote(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text('to,customer_name,order_number\na@x.test,"Ann,1\nb@x.test,Bob,2\n', encoding="utf-8")
    with pytest.raises(DataError, match="quoted value opened on this line is not closed") as caught:
        _rows(path)
    assert '""' in (caught.value.hint or "")
    assert "rows.csv line 2:" in caught.value.message


def test_an_unclosed_quote_after_good_rows_names_its_own_line(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text('to,customer_name,order_number\na@x.test,"Ann\nSmith",1\nb@x.test,Bob,2\n'
                    'c@x.test,"Carl,3\nd@x.test,Dan,4\ne@x.test,Eve,5\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"rows\.csv line 5: a quoted value opened on this line is not closed"):
        _rows(path)


def test_an_empty_csv_says_empty(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="is empty"):
        _rows(path)
