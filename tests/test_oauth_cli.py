"""Google and Microsoft 365 through the real command line, as separate processes: setup signs in (a browser
stand-in follows Google's consent redirect; a thread enters Microsoft's device code), validates with a test
message, saves; send and validate reuse the stored sign-in; disconnect removes it and validate then says so."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.common import USER, TLSFiles
from tests.support.fakes.google_server import CLIENT_SECRET, GoogleServer
from tests.support.fakes.microsoft_server import CLIENT_ID, TENANT, MicrosoftServer

INVOICE = ["--event", "overdue-invoice", "--to", "ap@customer.test", "--var", "customer_name=Northwind",
           "--var", "invoice_number=INV-9", "--var", "amount_due=10", "--var", "due_date=2026-11-15",
           "--var", "payment_link=https://pay.example/INV-9", "--json"]


def xoromail(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xoromail_cli", *args], env=env, input=stdin, text=True,
                          capture_output=True, timeout=90, check=False)


@pytest.fixture
def env(config_path: Path) -> dict[str, str]:
    return {**os.environ, "XOROMAIL_CONFIG": str(config_path), "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def google_server(tls: TLSFiles) -> Iterator[GoogleServer]:
    server = GoogleServer(tls.server_context).start()
    yield server
    server.stop()


def test_google_connect_allow_send_validate_and_disconnect(
        google_server: GoogleServer, tls: TLSFiles, env: dict[str, str], tmp_path: Path) -> None:
    launcher = tmp_path / "browser"
    script = Path(__file__).parent / "support" / "fakes" / "play_browser.py"
    launcher.write_text(f"#!/bin/sh\nexec {sys.executable} {script} \"$1\"\n", encoding="utf-8")
    launcher.chmod(0o755)
    env = {**env, "BROWSER": str(launcher), "XOROMAIL_TEST_CA": str(tls.ca_file)}
    secrets_file = google_server.client_secrets(tmp_path / "client_secret.json")
    setup = xoromail(env, "setup", "--service", "email-services", "--client-secrets", str(secrets_file),
                     "--api-url", google_server.url, "--redirect-port", "0", "--sign-in-timeout", "30",
                     "--email", USER, "--display-name", "Company Billing", "--ca-file", str(tls.ca_file))
    assert setup.returncode == 0, setup.stdout + setup.stderr
    saved = Path(env["XOROMAIL_CONFIG"]).read_text()
    assert "[profiles.default.google]" in saved and CLIENT_SECRET not in saved
    assert "redirect_port = 0" in saved  # --redirect-port 0 is a value (any free port), not "not given"
    tokens = google_server.state.refresh_tokens
    assert tokens and not any(token in saved for token in tokens)
    assert len(google_server.state.sent) == 1  # the test message of the validation
    sent = xoromail(env, "send", *INVOICE)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert json.loads(sent.stdout.splitlines()[-1])["status"] == "sent" and len(google_server.state.sent) == 2
    assert xoromail(env, "validate", "--no-send").returncode == 0
    refused = xoromail(env, "disconnect")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    gone = xoromail(env, "disconnect", "--yes")
    assert gone.returncode == 0 and "revoked" in gone.stdout
    after = xoromail(env, "validate", "--json")
    assert after.returncode == 78 and "setup" in json.loads(after.stdout)["hint"]


def test_microsoft365_device_code_sign_in_then_send_through_graph(
        tls: TLSFiles, env: dict[str, str]) -> None:
    with MicrosoftServer(tls.server_context) as server:
        args = [sys.executable, "-m", "xoromail_cli", "setup", "--service", "microsoft365", "--tenant", TENANT,
                "--client-id", CLIENT_ID, "--authority-host", server.authority_host, "--graph-url",
                server.graph_url, "--email", USER, "--display-name", "Company Billing", "--ca-file",
                str(tls.ca_file)]
        with subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) as setup:
            assert setup.stdout is not None
            seen = []
            for line in setup.stdout:
                seen.append(line)
                code = re.search(r"enter the code (\w+)", line)
                if code:
                    server.approve(code.group(1))
                    break
            rest, errors = setup.communicate(timeout=60)
        output = "".join(seen) + rest
        assert setup.returncode == 0, output + errors
        assert "microsoft.com/devicelogin" in output or "devicelogin" in output
        assert len(server.sent) == 1
        sent = xoromail(env, "send", *INVOICE)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert len(server.sent) == 2 and b"INV-9" in server.sent[-1].mime
        shown = json.loads(xoromail(env, "config", "show", "--json").stdout)
        assert shown["secrets"]["token_cache"] == "set" and "password" not in shown
        assert xoromail(env, "disconnect", "--yes").returncode == 0
        assert xoromail(env, "validate").returncode != 0


def test_microsoft365_a_conditional_access_block_then_the_hinted_flow_signs_in(
        tls: TLSFiles, env: dict[str, str]) -> None:
    """AADSTS53003 on the device-code flow: the hint's exact options (--sign-in browser --redirect-port) are typed
    as shown (the port made free here) and the browser flow signs in through the same command line."""
    from tests.support.m365_helpers import browsing
    from xoromail_cli.local.sink import free_port

    with MicrosoftServer(tls.server_context) as server:
        server.fail(53003, "urn:ietf:params:oauth:grant-type:device_code")
        args = ["setup", "--service", "microsoft365", "--tenant", TENANT, "--client-id", CLIENT_ID,
                "--authority-host", server.authority_host, "--graph-url", server.graph_url, "--email", USER,
                "--display-name", "Company Billing", "--ca-file", str(tls.ca_file)]
        with subprocess.Popen([sys.executable, "-m", "xoromail_cli", *args], env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as blocked:
            assert blocked.stdout is not None
            for line in blocked.stdout:
                code = re.search(r"enter the code (\w+)", line)
                if code:
                    server.approve(code.group(1))
                    break
            _, errors = blocked.communicate(timeout=60)
        assert blocked.returncode == 77, errors
        hint = " ".join(errors.split())
        assert "AADSTS53003" in hint and "Conditional Access" in hint
        option = re.search(r"--sign-in browser --redirect-port (\d+)", hint)
        assert option is not None, hint
        port = str(free_port())
        seen: list[str] = []
        visit = browsing(str(tls.ca_file), seen)
        with subprocess.Popen([sys.executable, "-m", "xoromail_cli", *args, "--sign-in", "browser",
                               "--redirect-port", port], env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as browser:
            assert browser.stdout is not None
            for line in browser.stdout:
                if "https://" in line and "/authorize" in line:
                    visit(line)
                    break
            rest, errors = browser.communicate(timeout=60)
        assert browser.returncode == 0, rest + errors
        assert f"localhost%3A{port}" in seen[0] and len(server.sent) == 1  # the redirect took the typed port
