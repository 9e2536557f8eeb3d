"""A Ctrl-C or SIGTERM that comes while a message's data is being written (a large attachment on a slow link),
before its final CRLF . CRLF went out: the server cannot have accepted it (RFC 5321 4.1.1.4), so its ledger row
settles as not sent (`temporary`) and the summary counts it so, and the run still ends 130/143 with send's hint.
The next run sends it once, never calling it interrupted or a possible duplicate, even with --no-retry-in-doubt.

The other side stays true in tests/test_cron_output.py (a signal after the data went out: at most one row in
flight) and tests/test_signal_while_recording.py. The server here says 354, reads one line and then nothing: the
16 MB message cannot fit in the sockets' buffers, so the `send` process is blocked in the middle of its data when
the signal comes (the profile's timeout is far longer than the test waits).
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.cli import SCRIPT, signalled
from tests.support.common import PASSWORD, USER, ServerFactory, TLSFiles, configure
from tests.support.misbehaving import FEATURES, PIPELINING, big_file, scripted, stops_reading
from tests.support.samples import OVERDUE, smtp_profile
from xoromail_cli import config
from xoromail_cli.cli import app
from xoromail_cli.ledger.accounts import account_key
from xoromail_cli.ledger.sqlite import Ledger
from xoromail_cli.services.deadline import WRITE_CHUNK, Reached

ACCOUNT = account_key(USER)


def _send(config_path: Path, attachment: Path, *extra: str) -> list[str]:
    return ["--config", str(config_path), "send", "--event", "overdue-invoice", "--to", "ann@client.test",
            *OVERDUE, "--attach", str(attachment), "--retry-delay", "0", *extra]


@pytest.mark.parametrize("ehlo", [FEATURES, PIPELINING], ids=["lock-step", "pipelining"])
@pytest.mark.parametrize(("signal_number", "exit_code", "cause"), [
    (signal.SIGTERM, 143, "stopped by SIGTERM"), (signal.SIGINT, 130, "interrupted (Ctrl-C)")], ids=["TERM", "INT"])
def test_a_signal_in_the_middle_of_a_message_s_data_settles_it_as_not_sent(
        ehlo: bytes, signal_number: int, exit_code: int, cause: str, runner: CliRunner, smtp_server: ServerFactory,
        tls: TLSFiles, config_path: Path, tmp_path: Path, isolated_environment: Path) -> None:
    attachment = big_file(tmp_path)
    reading_stopped = threading.Event()
    with scripted(stops_reading(ehlo, stopped=reading_stopped)) as stalling:
        config.save_profile(config_path, smtp_profile(
            name="default", email=USER, host="127.0.0.1", port=stalling.port, security="none",
            display_name="Company Billing", ca_file=str(tls.ca_file), timeout=60))
        # signalled once the client has marked the row and is writing the data
        done = signalled([SCRIPT, *_send(config_path, attachment, "--json")],
                         {**os.environ, "XOROMAIL_PASSWORD": PASSWORD}, reading_stopped, signal_number)
    stdout, stderr = done.stdout, done.stderr
    assert done.returncode == exit_code, stderr
    assert cause in stderr and "Traceback" not in stderr
    assert "re-run the same command to finish: what was sent is skipped" in stderr
    [line] = [json.loads(text) for text in stdout.splitlines() if '"status"' in text]
    assert line["status"] == "temporary" and line["in_doubt"] is False and not line["possible_duplicate"]
    assert "before its end went out: not sent" in line["reply"] and "no duplicate" in line["hint"]
    [summary] = [text for text in stderr.splitlines() if text.startswith("overdue-invoice:")]
    assert "1 temporary" in summary and "not attempted" not in summary  # as the ledger reads
    ledger_file = isolated_environment / "state" / "xoromail" / "ledger.sqlite3"
    with Ledger(ledger_file) as ledger:
        assert [entry.status for entry in ledger.entries()] == ["temporary"]
        assert ledger.interrupted(ACCOUNT) == []

    good = smtp_server()
    configure(config_path, good, tls)
    second = runner.invoke(app, _send(config_path, attachment, "--no-retry-in-doubt"))
    assert second.exit_code == 0, second.output
    assert "interrupted" not in second.output and "possible duplicate" not in second.output
    assert "in doubt" not in second.output
    assert Counter(r for m in good.messages for r in m.recipients) == {"ann@client.test": 1}
    with Ledger(ledger_file) as ledger:
        assert sorted(entry.status for entry in ledger.entries()) == ["sent", "temporary"]


def test_the_end_of_a_message_is_near_from_the_write_before_the_one_that_may_take_it() -> None:
    """A signal's exception can come between a write and the count of what it took: a stop counts as before the
    end only while no write that may take the end has begun (each write takes at most WRITE_CHUNK bytes)."""
    heard: list[str] = []
    end = 3 * WRITE_CHUNK + 10
    reached = Reached(end, lambda: heard.append("written"), lambda: heard.append("near"))
    reached(WRITE_CHUNK)
    reached(2 * WRITE_CHUNK)
    assert heard == []
    reached(end - WRITE_CHUNK)
    assert heard == ["near"]
    reached(end)
    assert heard == ["near", "written"]
    small: list[str] = []
    Reached(WRITE_CHUNK, lambda: small.append("written"), lambda: small.append("near"))
    assert small == ["near"]  # the first write may take all of it: near before any write
