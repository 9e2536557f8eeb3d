"""Every Sender test of test_sending.py again, against servers that advertise PIPELINING.

The promises (per-recipient refusals, partial deliveries, 4xx retries, the in-flight mark, a ledger row per
message, quota stops) must read the same whether the dialogue is lock-step or pipelined.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests import test_sending
from tests.support.pipelined import advertise
from xoromail_cli.local.sink import CaptureHandler

globals().update({name: value for name, value in vars(test_sending).items() if name.startswith("test_")})


@pytest.fixture(autouse=True)
def every_server_pipelines(monkeypatch: pytest.MonkeyPatch) -> None:
    async def handle_ehlo(self: CaptureHandler, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        return await advertise(responses)

    monkeypatch.setattr(CaptureHandler, "handle_EHLO", handle_ehlo)
    return

