from __future__ import annotations

from pathlib import Path

from xoromail_cli.compose.events import EVENTS
from xoromail_cli.local import demo


def test_demo_validates_against_its_own_server_and_shows_what_arrived(tmp_path: Path) -> None:
    result = demo.run(tmp_path)
    assert result.ok, result.to_json()
    assert [stage.name for stage in result.report.stages][-1] == "send"
    assert result.received[0].login == demo.DEMO_ADDRESS
    subjects = [item["subject"] for item in result.to_json()["received"]]
    assert subjects[0].startswith("xoromail test message")
    assert len(subjects) == 1 + len(EVENTS)
    assert "Payment reminder: invoice INV-1042 is overdue" in subjects
    assert [r.status for r in result.events] == ["sent"] * len(EVENTS)
    slip = result.received[1 + list(EVENTS).index("packing-slip")].parsed()
    assert [part.get_filename() for part in slip.iter_attachments()] == ["packing-slip-SO-2231.pdf"]
