from __future__ import annotations

from xoromail_cli.presets import PRESETS, preset_for_domain, preset_for_host


def test_consumer_domains_imply_their_provider() -> None:
    found = preset_for_domain("someone@gmail.com")
    assert found is not None and found.host == "smtp.gmail.com"
    assert preset_for_domain("billing@company.test") is None


def test_presets_carry_the_documented_limits_and_ports() -> None:
    assert (PRESETS["office365"].host, PRESETS["office365"].port) == ("smtp.office365.com", 587)
    assert PRESETS["office365"].per_minute == 30
    assert PRESETS["yahoo"].security == "ssl"
    found = preset_for_host("SMTP.GMAIL.COM")
    assert found is not None and found.key == "gmail"
    assert "app password" in PRESETS["gmail"].notes
