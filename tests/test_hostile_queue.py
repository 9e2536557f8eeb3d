"""Issue 21, "output is safe for a terminal": an upstream reply carrying terminal escape sequences, kept as a queued
message's last reply by the relay, is shown escaped by `queue list` (a real aiosmtpd upstream,
the relay in this process)."""

from __future__ import annotations

from typer.testing import CliRunner

from tests.support.common import PASSWORD, ServerFactory, TLSFiles, profile_for
from tests.support.relay_helpers import RelayFactory, erp_message, relay, submit, wait_for
from tests.support.servers import DataReply
from xoromail_cli import credentials
from xoromail_cli.cli import app

__all__ = ["relay"]  # the fixture, imported for pytest
ESCAPES = ("\x1b", "\x07", "\x9b")


def test_escape_sequences_in_a_kept_reply_are_escaped_in_queue_list(
        relay: RelayFactory, smtp_server: ServerFactory, tls: TLSFiles, runner: CliRunner) -> None:
    upstream = smtp_server(handler=DataReply("451 4.3.0 \x1b[2J\x1b]0;owned\x07 try \x9b2J later"))
    credentials.store_password("default", PASSWORD)
    running = relay(profile_for(upstream, tls), retry_delay=600.0)
    submit(running.port, erp_message(1))
    wait_for(lambda: bool(running.logged("deferred")), what="the deferred delivery")
    for extra in ([], ["--json"]):
        shown = runner.invoke(app, ["queue", "list", "--spool", str(running.spool.root), *extra])
        assert shown.exit_code == 0 and "451 4.3.0" in shown.output, shown.output
        assert not any(code in shown.output for code in ESCAPES), repr(shown.output)
        assert ("\\u001b[2J" if extra else "\\x1b[2J\\x1b]0;owned\\x07") in shown.output, shown.output
