"""One `xoromail send` in a fresh interpreter that writes its `sys.modules` to a file when it exits: what the send
path loads (tests/test_send_imports.py, tests/test_recorded_backend.py)."""

from __future__ import annotations

SEND = ["send", "--event", "overdue-invoice", "--to", "ann@client.test", "--var", "customer_name=Ann",
        "--var", "invoice_number=INV-1", "--var", "amount_due=1249.50", "--var", "due_date=2026-11-15"]

PROBE = """
import atexit, json, sys
target = sys.argv[1]
def listing():
    with open(target, "w", encoding="utf-8") as handle:
        json.dump(sorted(sys.modules), handle)
atexit.register(listing)
sys.argv = ["xoromail", *sys.argv[2:]]
from xoromail_cli.cli import main
main()
"""
