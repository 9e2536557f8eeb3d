"""The wizard's retry menu after a failed check: its default is the answer the hint talks about, and every
answer has a plain name."""

from __future__ import annotations

from xoromail_cli.cli.wizard import menu_labels, suggest_change
from xoromail_cli.errors import ExitCode
from xoromail_cli.validate import Stage, ValidationReport


def failed_at(stage: str, detail: str, hint: str, code: ExitCode) -> ValidationReport:
    return ValidationReport(profile="default", stages=[Stage(name=stage, ok=False, detail=detail, hint=hint)],
                            exit_code=code)


KEYS = ["tenant", "client_id", "mode", "sign_in", "send_via", "email", "ca_file"]


def test_the_default_is_what_the_hint_names_first() -> None:
    app_not_found = failed_at("sign-in", "AADSTS700016: application not found",
                              "client ID 1234 is not an app registration of tenant contoso.test: copy the "
                              "'Application (client) ID' … and check --tenant and --cloud", ExitCode.CONFIG)
    assert suggest_change(app_not_found, KEYS) == "client_id"
    tenant = failed_at("sign-in", "AADSTS90002", "tenant 'x' does not exist in this cloud: use the tenant's domain",
                       ExitCode.CONFIG)
    assert suggest_change(tenant, KEYS) == "tenant"
    flows = failed_at("sign-in", "AADSTS53003", "a Conditional Access policy blocked this sign-in: try "
                      "`xoromail setup --service microsoft365 --sign-in browser`", ExitCode.NOPERM)
    assert suggest_change(flows, KEYS) == "sign_in"


def test_the_older_rules_still_come_first() -> None:
    refused = failed_at("auth", "535 5.7.8 Username and Password not accepted", "check the username and password",
                        ExitCode.NOPERM)
    assert suggest_change(refused, ["host", "username", "email", "password", "ca_file"]) == "password"


def test_every_answer_has_a_plain_name() -> None:
    labels = menu_labels([*KEYS, "password", "some_new_key"], {"mode": "Sign in as the mailbox or as the app"})
    assert labels[KEYS.index("client_id")] == "the client (application) ID"
    assert not any("_" in label for label in labels), labels
