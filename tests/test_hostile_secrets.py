"""Secrets: `disconnect` removes every one of the profile's, and says which; none goes on a command line."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tests.support.common import TLSFiles, configure
from xoromail_cli import credentials
from xoromail_cli.cli import app
from xoromail_cli.cli.disconnect_cmd import PROFILE_SECRET_KINDS
from xoromail_cli.ledger.location import SECRET_KIND
from xoromail_cli.relay.credential import PASSWORD_KIND, USER_KIND


def test_disconnect_removes_the_relay_login_and_the_ledger_password_too_and_says_so(
        runner: CliRunner, tls: TLSFiles, config_path: Path) -> None:
    assert set(PROFILE_SECRET_KINDS) == {USER_KIND, PASSWORD_KIND, SECRET_KIND}
    base = configure(config_path, None, tls)
    for kind in PROFILE_SECRET_KINDS:
        credentials.write_secret("default", kind, f"value-of-{kind}")
    result = runner.invoke(app, [*base, "disconnect", "--yes"])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert f"removed from {credentials.store_label()}: password, relay login, ledger password" in said
    assert all(credentials.read_secret("default", kind) is None for kind in ("password", *PROFILE_SECRET_KINDS))
    again = runner.invoke(app, [*base, "disconnect", "--yes", "--json"])
    assert again.exit_code == 0, again.output
    answer = json.loads(again.output)
    assert answer["removed"] == [] and "nothing was removed" in answer["detail"]
