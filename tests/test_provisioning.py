from __future__ import annotations

import pytest

from tests.support.samples import smtp_profile
from xoromail_cli.errors import UsageError
from xoromail_cli.provisioning import SetupAnswers, build_profile, missing


def test_preset_fills_server_port_and_security() -> None:
    profile = build_profile(
        "default",
        SetupAnswers(email="billing@company.test", display_name="Billing", service_answers={"preset": "office365"}),
    )
    assert (profile.settings.host, profile.settings.port, profile.settings.security, profile.settings.preset) == (
        "smtp.office365.com",
        587,
        "starttls",
        "office365",
    )


def test_gmail_address_implies_the_gmail_preset() -> None:
    profile = build_profile("default", SetupAnswers(email="someone@gmail.com", display_name="X"))
    assert profile.settings.host == "smtp.gmail.com"


def test_port_465_implies_implicit_tls() -> None:
    profile = build_profile(
        "default", SetupAnswers(email="a@b.test", service_answers={"host": "mail.b.test", "port": 465})
    )
    assert profile.settings.security == "ssl"


def test_security_choice_picks_the_matching_port() -> None:
    profile = build_profile(
        "default", SetupAnswers(email="a@b.test", service_answers={"host": "mail.b.test", "security": "ssl"})
    )
    assert profile.settings.port == 465


def test_rerun_keeps_what_was_not_given() -> None:
    old = smtp_profile(
        name="default",
        email="a@b.test",
        host="mail.b.test",
        port=2587,
        security="starttls",
        display_name="Old",
        company_name="ACME",
    )
    profile = build_profile("default", SetupAnswers(display_name="New"), old)
    assert (profile.settings.host, profile.settings.port, profile.display_name, profile.company_name) == (
        "mail.b.test",
        2587,
        "New",
        "ACME",
    )


def test_username_equal_to_the_email_is_not_stored_twice() -> None:
    profile = build_profile(
        "default", SetupAnswers(email="a@b.test", service_answers={"host": "h.b.test", "username": "A@b.test"})
    )
    assert profile.settings.username == ""


def test_missing_lists_every_option_a_script_must_pass() -> None:
    assert missing(SetupAnswers(), None, secret_known=False) == [
        "--email",
        "--display-name",
        "--host (or --preset)",
        "--password-stdin (or --password-command, or $XOROMAIL_PASSWORD)",
    ]


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(UsageError, match="unknown preset 'aol'") as caught:
        build_profile("default", SetupAnswers(email="a@b.test", service_answers={"preset": "aol"}))
    assert "office365" in (caught.value.hint or "")


def test_a_relay_login_equal_to_the_email_is_kept_without_tls() -> None:
    profile = build_profile(
        "default",
        SetupAnswers(
            email="a@b.test", service_answers={"host": "relay.b.test", "security": "none", "username": "a@b.test"}
        ),
    )
    assert profile.settings.username == "a@b.test" and profile.settings.auth_username(profile.email) == "a@b.test"


def test_changing_only_the_port_keeps_the_security_mode() -> None:
    old = smtp_profile(name="default", email="a@b.test", host="relay.b.test", port=25, security="none")
    assert build_profile("default", SetupAnswers(service_answers={"port": 2525}), old).settings.security == "none"
    assert (
        build_profile(
            "default", SetupAnswers(service_answers={"host": "mail.b.test", "port": 465}), old
        ).settings.security
        == "ssl"
    )
