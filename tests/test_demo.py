from __future__ import annotations

from pathlib import Path

from xoromail_cli import demo


def test_demo_validates_against_its_own_server_and_shows_what_arrived(tmp_path: Path) -> None:
    result = demo.run(tmp_path)
    assert result.ok, result.to_json()
    assert [stage.name for stage in result.report.stages][-1] == "send"
    assert len(result.received) >= 1
    assert result.received[0].login == demo.DEMO_ADDRESS
    assert result.to_json()["received"][0]["subject"].startswith("xoromail test message")
