"""Fast start: setting up or describing an Exchange profile never loads exchangelib (≈0.5 s) or requests."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.test_boundaries import service_libraries

HEAVY = tuple(sorted(service_libraries("exchange")))
"""exchangelib, requests, requests_ntlm, spnego …: derived from the boundaries table."""
SETUP_PATH = """
import sys
from xoromail_cli.services.exchange.service import SERVICE, setup_warnings
settings = SERVICE.build_settings({"ews_url": "https://mail.company.com/EWS/Exchange.asmx",
                                   "username": "billing"}, None, "billing@company.com")
SERVICE.settings_from_table(settings.to_table())
setup_warnings(settings)
SERVICE.next_question({}, settings, "billing@company.com")
import xoromail_cli.services.exchange.hints, xoromail_cli.services.http
import xoromail_cli.services.exchange.transport
print(",".join(name for name in HEAVY if name in sys.modules))
"""


def test_exchange_setup_path_imports_no_heavy_library() -> None:
    code = f"HEAVY = {HEAVY!r}\n{SETUP_PATH}"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


@pytest.mark.parametrize("module", ["xoromail_cli.cli", "xoromail_cli.services.base"])
def test_cli_and_contract_do_not_import_exchangelib(module: str) -> None:
    code = f"import {module}, sys; print('exchangelib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_opening_a_transport_is_what_loads_exchangelib() -> None:
    """The pin above could pass vacuously if exchangelib were never importable; this proves the path does."""
    code = ("import sys; from xoromail_cli.services.exchange.transport import _lost_connection\n"
            "_lost_connection(ValueError()); print('requests' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "True"
