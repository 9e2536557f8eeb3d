"""Issue 22: the real Secret Service, once: gnome-keyring-daemon in a `dbus-run-session`, unlocked with a known
password, and the installed command run there with no PYTHON_KEYRING_BACKEND: setup → validate → send →
disconnect. `.ci/run` installs gnome-keyring and dbus; elsewhere the test says what to install."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from keyrings.alt.file import PlaintextKeyring

from tests.support.common import PASSWORD, USER, ServerFactory, TLSFiles
from tests.support.secret_scan import files_holding
from tests.support.secret_service import in_secret_service_session, secret_service_here

SCRIPT = str(Path(sys.executable).with_name("xoromail"))
IN_SECRET_SERVICE = """
import json, sys
import secretstorage
connection = secretstorage.dbus_init()
items = secretstorage.search_items(connection, {"service": "xoromail", "username": "default"})
print(json.dumps([item.get_secret().decode() == sys.argv[1] for item in items]))
"""


def test_setup_validate_send_and_disconnect_with_the_secret_service(
        smtp_server: ServerFactory, tls: TLSFiles, tmp_path: Path, isolated_environment: Path) -> None:
    instead = "checked that setup refuses a plain file where no Secret Service runs"
    server = smtp_server()
    if not secret_service_here(instead):  # outside CI, without them: what happens where no Secret Service is
        no_secret_service_means_no_silent_plain_file(server.port, tls, tmp_path)
        return
    config_path = tmp_path / "config" / "xoromail.toml"
    base = [SCRIPT, "--config", str(config_path)]
    check = [sys.executable, "-c", IN_SECRET_SERVICE, PASSWORD]
    steps: list[Any] = [
        {"argv": [*base, "setup", "--email", USER, "--display-name", "Billing", "--host", "127.0.0.1",
                  "--port", str(server.port), "--security", "starttls", "--ca-file", str(tls.ca_file),
                  "--password-stdin"], "input": PASSWORD + "\n"},
        check,
        [*base, "config", "show", "--json"],
        [*base, "validate"],
        [*base, "send", "--event", "overdue-invoice", "--to", "ann@client.test", "--var", "customer_name=Ann",
         "--var", "invoice_number=INV-1", "--var", "amount_due=99.5", "--var", "due_date=2026-11-01"],
        [*base, "disconnect", "--yes"],
        check,
    ]
    setup, stored, shown, validate, send, disconnect, after = in_secret_service_session(steps, tmp_path)
    for step in (setup, stored, shown, validate, send, disconnect, after):
        assert step["code"] == 0, step
    assert "password in Secret Service" in " ".join(setup["stdout"].split())
    assert json.loads(stored["stdout"]) == [True]  # one item, in the Secret Service, holding the password
    settings = json.loads(shown["stdout"])
    assert settings["secret_store"] == {"name": "Secret Service", "usable": True, "encrypts": True, "problem": None}
    assert settings["password"]["source"] == "keyring" and settings["password"]["set"] is True
    assert len(server.messages) == 3  # setup's test, validate's test, the invoice: each signed in with it
    assert json.loads(after["stdout"]) == []  # disconnect removed it from the Secret Service
    assert not Path(PlaintextKeyring().file_path).exists()
    assert list((isolated_environment / "data" / "keyrings").glob("*.keyring"))  # gnome-keyring's own file
    assert files_holding(tmp_path, PASSWORD) == []


def no_secret_service_means_no_silent_plain_file(port: int, tls: TLSFiles, tmp_path: Path) -> None:
    """Without a Secret Service and without PYTHON_KEYRING_BACKEND, keyring would fall back on keyrings.alt's
    plain file; setup refuses instead, says what to use, and leaves the password nowhere."""
    config_path = tmp_path / "config" / "xoromail.toml"
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHON_KEYRING_BACKEND", "DBUS_SESSION_BUS_ADDRESS")}
    done = subprocess.run([SCRIPT, "--config", str(config_path), "setup", "--email", USER, "--display-name",
                           "Billing", "--host", "127.0.0.1", "--port", str(port), "--security", "starttls",
                           "--ca-file", str(tls.ca_file), "--password-stdin"], input=PASSWORD + "\n", env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 78, done.stdout + done.stderr
    assert "Secret Service" in " ".join(done.stderr.split()), done.stderr
    assert not config_path.exists() and not Path(PlaintextKeyring().file_path).exists()
    assert files_holding(tmp_path, PASSWORD) == []
