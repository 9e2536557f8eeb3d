"""`xoromail queue` over a real spool, the relay's refusals at start, and its fast import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from tests.support.common import USER, TLSFiles
from tests.support.samples import smtp_profile
from xoromail_cli import config, paths
from xoromail_cli.cli import app
from xoromail_cli.compose.envelope import Envelope
from xoromail_cli.relay.spool import QueueState, Spool

DATA = b"From: billing@company.test\r\nTo: a@client.test\r\nSubject: x\r\nMessage-ID: <m1@company.test>\r\n\r\nhi\r\n"


def saved(config_path: Path, tls: TLSFiles) -> Spool:
    config.save_profile(config_path, smtp_profile(name="default", email=USER, host="127.0.0.1", port=2587,
                                                  security="starttls", ca_file=str(tls.ca_file)))
    return Spool(paths.state_dir() / "relay" / "default")


def test_queue_lists_retries_and_drops_what_the_spool_keeps(runner: CliRunner, config_path: Path,
                                                           tls: TLSFiles) -> None:
    spool = saved(config_path, tls)
    queued = spool.put(Envelope(sender=USER, to=("a@client.test",), data=DATA, message_id="<m1@company.test>",
                                bcc=("b@company.test",)))
    refused = spool.put(Envelope(sender=USER, to=("c@client.test",), data=DATA, message_id="<m2@company.test>"))
    spool.set_state(queued, QueueState(attempts=2, next_attempt=4102444800.0, last_reply="451 4.3.0 try later"))
    spool.fail(refused, QueueState(attempts=1, last_reply="550 5.1.1 User unknown"))
    base = ["--config", str(config_path), "queue"]
    rows = [json.loads(line) for line in runner.invoke(app, [*base, "list", "--json"]).stdout.splitlines()]
    assert [(r["id"], r["where"], r["attempts"], r["last_reply"]) for r in rows] == [
        (queued, "queue", 2, "451 4.3.0 try later"), (refused, "failed", 1, "550 5.1.1 User unknown")]
    assert rows[0]["recipients"] == ["a@client.test", "b@company.test"] and rows[0]["size"] == len(DATA)
    table = runner.invoke(app, [*base, "list"])
    assert table.exit_code == 0 and "550 5.1.1" in table.output and "failed" in table.output
    assert runner.invoke(app, [*base, "retry", refused]).exit_code == 0
    assert spool.ids() == sorted([queued, refused]) and spool.state(refused).next_attempt == 0.0
    assert runner.invoke(app, [*base, "retry", queued]).exit_code == 0
    assert spool.due(0.0)[0] == sorted([queued, refused])
    assert runner.invoke(app, [*base, "drop", queued]).exit_code == 0
    assert spool.ids() == [refused]
    missing = runner.invoke(app, [*base, "drop", queued])
    assert missing.exit_code == 66 and "no message" in missing.output
    assert runner.invoke(app, [*base, "drop", "../../etc/passwd"]).exit_code == 2


def test_an_empty_spool_says_so(runner: CliRunner, config_path: Path, tls: TLSFiles) -> None:
    saved(config_path, tls)
    result = runner.invoke(app, ["--config", str(config_path), "queue", "list"])
    assert result.exit_code == 0 and "The spool is empty." in result.output


def test_a_certificate_without_its_key_or_a_bad_listen_address_is_refused(runner: CliRunner, tls: TLSFiles,
                                                                       config_path: Path) -> None:
    half = runner.invoke(app, ["relay", "--tls-cert", str(tls.ca_file)])
    assert half.exit_code == 78 and "--tls-key" in half.output
    wrong = runner.invoke(app, ["relay", "--tls-cert", str(tls.ca_file), "--tls-key", str(tls.ca_file)])
    assert wrong.exit_code == 78 and "cannot use the certificate" in wrong.output
    assert runner.invoke(app, ["relay", "--listen", "2525"]).exit_code == 2


def test_importing_the_relay_loads_neither_aiosmtpd_nor_any_service_library() -> None:
    code = ("import sys, xoromail_cli.relay.server, xoromail_cli.relay.delivery, xoromail_cli.relay.credential, "
            "xoromail_cli.cli.relay_cmd, xoromail_cli.cli.queue_cmd; "
            "heavy = [m for m in ('aiosmtpd', 'msal', 'requests', 'exchangelib', 'google.auth', 'psycopg', 'jinja2', "
            "'dns', 'keyring') if m in sys.modules]; assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)
