from __future__ import annotations

from dataclasses import replace

from tests.support.common import PASSWORD, ServerFactory, TLSFiles, profile_for, secrets
from xoromail_cli.services.smtp.presets import PRESETS, preset_for_domain, preset_for_host


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


def test_office365_notes_carry_todays_state_of_smtp_auth() -> None:
    from xoromail_cli.services.smtp.presets import preset_notes

    assert "SMTP AUTH" in preset_notes(PRESETS["office365"]) and "December 2026" in preset_notes(PRESETS["office365"])


def test_microsofts_password_shaped_endpoints_have_presets_with_their_facts() -> None:
    from xoromail_cli.services.smtp.presets import is_hve, preset_notes

    hve, acs = PRESETS["hve"], PRESETS["acs"]
    assert (hve.host, hve.port, hve.security) == ("smtp-hve.office365.com", 587, "starttls")
    assert "internal recipients only" in preset_notes(hve) and "600 s" in hve.notes and "September 2028" in hve.notes
    assert (acs.host, acs.port, acs.security, acs.per_minute) == ("smtp.azurecomm.net", 587, "starttls", 30)
    assert "SMTP Username" in acs.notes and "client secret" in acs.notes and "100 an hour" in acs.notes
    assert is_hve("SMTP-HVE.office365.com.") and not is_hve("smtp.office365.com")
    assert preset_for_host("smtp.azurecomm.net") is acs


def test_the_hve_preset_says_internal_recipients_only_in_validates_notes(
        smtp_server: ServerFactory, tls: TLSFiles) -> None:
    from xoromail_cli import validate

    server = smtp_server()
    profile = profile_for(server, tls)
    profile = replace(profile, settings=replace(profile.settings, preset="hve"))
    report = validate.run(profile, secrets(PASSWORD), send=False)
    assert report.exit_code == 0 and any("internal recipients only" in note for note in report.notes)


def test_hve_and_acs_say_their_terms_at_setup_and_acs_needs_its_own_user_name() -> None:
    """Said before anything is saved (also with --no-validate); ACS's user is a resource, never the From address."""
    from xoromail_cli.services.smtp.service import SmtpService
    from xoromail_cli.services.smtp.settings import SmtpSettings

    service = SmtpService()
    hve = SmtpSettings(host="smtp-hve.office365.com", port=587, security="starttls", preset="hve")
    assert any("internal recipients only" in note for note in service.setup_notes(hve))
    acs = SmtpSettings(host="smtp.azurecomm.net", port=587, security="starttls", preset="acs")
    assert any("SMTP Username" in note for note in service.setup_notes(acs))
    need = service.missing({"preset": "acs"}, None, True, "billing@company.test")
    assert any(flag.startswith("--username") and "SMTP Username" in flag for flag in need)
    assert service.missing({"preset": "acs", "username": "erp-smtp"}, None, True, "billing@company.test") == []
