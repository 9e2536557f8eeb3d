from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from xoromail_cli.compose.events import EVENTS
from xoromail_cli.errors import DataError, ExitCode, NoInputError, UsageError
from xoromail_cli.sending.batch import InvalidRow, SendJob, check_batch, jobs_from_file, load_data, make_job, parse_var

EVENT = EVENTS["order-release"]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_rows_become_jobs_with_lists_and_defaults(tmp_path: Path) -> None:
    (tmp_path / "slip.pdf").write_bytes(b"%PDF")
    path = write(tmp_path / "rows.csv", "to,cc,customer_name,order_number,attach\n"
                                        "a@x.test; b@x.test,c@x.test,Ann,1,slip.pdf\n"
                                        "d@x.test,,Dan,2,\n")
    jobs = list(jobs_from_file(EVENT, path, {"customer_name": "default"}))
    assert all(isinstance(j, SendJob) for j in jobs)
    first, second = jobs
    assert isinstance(first, SendJob) and isinstance(second, SendJob)
    assert first.recipients.to == ("a@x.test", "b@x.test") and first.recipients.cc == ("c@x.test",)
    assert first.attachments[0].filename == "slip.pdf" and first.row == 2
    assert second.variables == {"customer_name": "Dan", "order_number": "2"}


def test_json_lines_and_excel_bom_are_read(tmp_path: Path) -> None:
    jsonl = write(tmp_path / "rows.jsonl", json.dumps({"to": ["a@x.test"], "customer_name": "A", "order_number": 5})
                  + "\n\n")
    assert [j.row for j in jobs_from_file(EVENT, jsonl, {})] == [1]
    bom = tmp_path / "excel.csv"
    bom.write_bytes("\ufeffto,customer_name,order_number\r\na@x.test,A,1\r\n".encode())
    assert isinstance(next(jobs_from_file(EVENT, bom, {})), SendJob)


def test_bad_rows_are_reported_with_their_row_number_and_code(tmp_path: Path) -> None:
    path = write(tmp_path / "rows.csv", "to,customer_name,order_number,attach\n"
                                        "a@x.test,A,1,\n"
                                        "not-an-address,B,2,\n"
                                        "c@x.test,,3,\n"
                                        "d@x.test,D,4,missing.pdf\n")
    found = check_batch(EVENT, path, {})
    assert (found.valid, found.invalid_count) == (1, 3)
    rows = {bad.row: bad.error for bad in found.invalid}
    assert rows[3].exit_code == ExitCode.DATAERR and "not-an-address" in rows[3].message
    assert "missing variable(s) customer_name" in rows[4].message
    assert rows[5].exit_code == ExitCode.NOINPUT


def test_injection_in_addresses_and_file_names_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError):
        make_job(EVENT, 0, to=["a@x.test\r\nBcc: evil@x.test"], variables={"customer_name": "a", "order_number": "1"})
    evil = tmp_path / "a\nb.pdf"
    evil.write_bytes(b"x")
    with pytest.raises(DataError, match="line break"):
        make_job(EVENT, 0, to=["a@x.test"], variables={"customer_name": "a", "order_number": "1"},
                 attach=[str(evil)])
    with pytest.raises(DataError):
        make_job(EVENT, 0, to=["a@x.test"], variables={"customer_name": "a", "order_number": "1"},
                 reply_to="r@x.test\nBcc: e@x.test")


def test_missing_batch_file_is_exit_66(tmp_path: Path) -> None:
    with pytest.raises(NoInputError):
        next(jobs_from_file(EVENT, tmp_path / "nope.csv", {}))


def test_csv_without_to_column_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no 'to' column"):
        next(jobs_from_file(EVENT, write(tmp_path / "x.csv", "email,customer_name\na@x.test,A\n"), {}))


def test_rows_are_streamed_not_loaded(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w") as handle:
        handle.write("to,customer_name,order_number\n")
        for number in range(5000):
            handle.write(f"c{number}@x.test,C,{number}\n")
    first = next(jobs_from_file(EVENT, path, {}))
    assert not isinstance(first, InvalidRow) and first.row == 2


def test_vars_and_data_parse(tmp_path: Path) -> None:
    assert parse_var("a=b=c") == ("a", "b=c")
    with pytest.raises(UsageError):
        parse_var("novalue")
    assert load_data(str(write(tmp_path / "d.json", '{"x": "1"}')), io.StringIO()) == {"x": "1"}
    with pytest.raises(DataError, match="JSON object"):
        load_data(str(write(tmp_path / "l.json", "[1]")), io.StringIO())
    with pytest.raises(NoInputError):
        load_data(str(tmp_path / "none.json"), io.StringIO())
    assert load_data("-", io.StringIO('{"y": 2}')) == {"y": 2}


def test_a_repeated_column_is_refused_rather_than_dropping_a_recipient(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "to,to,customer_name,order_number\na@x.test,b@x.test,A,1\n")
    with pytest.raises(DataError, match="to appear more than once"):
        next(jobs_from_file(EVENT, path, {}))


def test_json_lines_with_odd_values_are_invalid_rows_or_data_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "r.jsonl", json.dumps({"to": "a@x.test", "customer_name": "A", "order_number": "1",
                                                   "reply_to": ["x@y.test"]}) + "\n")
    [bad] = list(jobs_from_file(EVENT, path, {}))
    assert isinstance(bad, InvalidRow) and "reply_to must be one address" in bad.error.message
    huge = write(tmp_path / "h.jsonl", '{"to": "a@x.test", "order_number": ' + "9" * 5000 + "}\n")
    with pytest.raises(DataError, match="line 1"):
        next(jobs_from_file(EVENT, huge, {}))


def test_packing_slip_without_attachment_is_refused_before_sending() -> None:
    with pytest.raises(DataError, match="needs at least one attachment"):
        make_job(EVENTS["packing-slip"], 0, to=["a@x.test"],
                 variables={"customer_name": "a", "order_number": "1", "invoice_number": "2"})


def test_a_semicolon_separated_csv_is_recognised(tmp_path: Path) -> None:
    path = write(tmp_path / "excel.csv", "to;customer_name;order_number\na@x.test;A;1\n")
    with pytest.raises(DataError, match="separated by ';'"):
        next(jobs_from_file(EVENT, path, {}))
