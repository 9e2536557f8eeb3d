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


def test_every_services_answer_has_a_label_of_its_own() -> None:
    """A flag's answer is in the menu too (`--no-browser` once showed as "the no browser"): each option and
    question of every service has a plain name written for it, not one made from its key."""
    from xoromail_cli import services
    from xoromail_cli.cli.wizard import ANSWER_LABELS, COMMON_LABELS

    keys = {option.key for name in services.REGISTRY for option in services.get(name).setup_options}
    missing = sorted(key for key in keys if key not in ANSWER_LABELS and key not in COMMON_LABELS)
    assert not missing, missing
    assert menu_labels(["no_browser"], {})[0] == "whether to open a browser"


def test_a_cancelled_sign_in_offers_signing_in_again_unchanged_first() -> None:
    """The Google page said 'cancelled' and the hint says to sign in again: no answer is wrong, so the default is
    to sign in again with the same answers (it was 'the loopback port', as if the port were at fault)."""
    from xoromail_cli.cli.wizard import AGAIN, retry_keys

    cancelled = failed_at("sign-in", "the sign-in was cancelled in the browser (access_denied)",
                          "run `xoromail setup --service google` again to sign in and click Allow", ExitCode.NOPERM)
    keys = retry_keys(cancelled, ["redirect_port", "client_secrets", "api_url", "no_browser", "email", "ca_file"])
    assert keys[0] == AGAIN and suggest_change(cancelled, keys) == AGAIN
    assert menu_labels([AGAIN], {}) == ["none: sign in again with the same answers"]
    blocked = failed_at("sign-in", "AADSTS53003", "a Conditional Access policy blocked this sign-in: try "
                        "`xoromail setup --service microsoft365 --sign-in browser`", ExitCode.NOPERM)
    assert suggest_change(blocked, retry_keys(blocked, KEYS)) == "sign_in"  # what the hint names still wins
    refused = failed_at("auth", "535 5.7.8", "check the username and password", ExitCode.NOPERM)
    assert AGAIN not in retry_keys(refused, ["host", "password"])


def test_a_refused_sign_in_counts_only_the_options_its_hint_names() -> None:
    """Nearly every sign-in hint says "sign in", and MFA's says "the tenant requires": neither is wrong. After a
    refusal (77) only an option the hint tells to use (`--sign-in browser`) is the default, else signing in again."""
    from xoromail_cli.cli.wizard import AGAIN, retry_keys

    mfa = failed_at("sign-in", "AADSTS50076: multi-factor authentication required",
                    "the tenant requires multi-factor authentication for this sign-in: complete it in the browser; "
                    "run `xoromail setup --service microsoft365` again to sign in", ExitCode.NOPERM)
    assert suggest_change(mfa, retry_keys(mfa, KEYS)) == AGAIN
    wrong_tenant = failed_at("sign-in", "AADSTS90002", "tenant 'x' does not exist in this cloud: use the tenant's "
                             "domain", ExitCode.CONFIG)
    assert suggest_change(wrong_tenant, retry_keys(wrong_tenant, KEYS)) == "tenant"  # a mistake (78): words count
