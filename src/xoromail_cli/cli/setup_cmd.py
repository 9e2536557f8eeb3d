"""`xoromail setup`: flags for scripts, a wizard at a terminal; validation decides whether it is saved."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from xoromail_cli.cli.state import state_of

if TYPE_CHECKING:
    from xoromail_cli.config import Profile
    from xoromail_cli.provisioning import SetupAnswers

SECURITY_HELP = "starttls (port 587), ssl (implicit TLS, port 465) or none (local relays only)."


def setup(
    ctx: typer.Context,
    service: Annotated[str | None, typer.Option(help="smtp (the ERP's 'Web Mail'; also: webmail).")] = None,
    preset: Annotated[str | None, typer.Option(
        metavar="NAME", help="office365, gmail, outlook, yahoo, icloud, zoho, fastmail or custom.")] = None,
    email: Annotated[str | None, typer.Option(metavar="ADDR", help="The company address mail comes from.")] = None,
    display_name: Annotated[str | None, typer.Option(metavar="NAME", help="Shown as the sender's name.")] = None,
    host: Annotated[str | None, typer.Option(metavar="HOST", help="Outgoing (SMTP) server.")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Server port.")] = None,
    security: Annotated[str | None, typer.Option(metavar="MODE", help=SECURITY_HELP)] = None,
    username: Annotated[str | None, typer.Option(
        metavar="USER", help="Sign-in name (default: the email).")] = None,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from the first line of standard input.")] = False,
    password_command: Annotated[str | None, typer.Option(
        metavar="CMD", help="Command that prints the password (stored instead of the password).")] = None,
    ca_file: Annotated[Path | None, typer.Option(
        metavar="PEM", help="CA certificate(s) to trust besides the system's.")] = None,
    timeout: Annotated[float | None, typer.Option(
        metavar="SECONDS", min=0.1, max=3600.0, help="Network timeout.")] = None,
    company_name: Annotated[str | None, typer.Option(metavar="TEXT", help="Company name used in emails.")] = None,
    reply_to: Annotated[str | None, typer.Option(metavar="ADDR", help="Reply-To for event emails.")] = None,
    ledger: Annotated[str | None, typer.Option(metavar="URL", help=(
        "Sent-ledger: a path, sqlite:///path or postgresql://user@host/db (a password in it goes to the keyring)."
    ))] = None,
    validate_to: Annotated[str | None, typer.Option(
        metavar="ADDR", help="Send the test message here (default: the account itself).")] = None,
    no_validate: Annotated[bool, typer.Option("--no-validate", help="Save without checking.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the validation result as JSON.")] = False,
) -> None:
    """Create or update a profile: checked by sending a test message before it is saved."""
    from xoromail_cli import config, credentials, provisioning
    from xoromail_cli.cli.console import can_prompt, out
    from xoromail_cli.errors import UsageError

    state = state_of(ctx)
    existing = config.load(state.config_path).profiles.get(state.profile_name)
    if ledger is not None:
        from xoromail_cli.ledger_url import keep_password_apart

        ledger = keep_password_apart(state.profile_name, ledger)
    settings = {key: value for key, value in (("company_name", company_name), ("reply_to", reply_to),
                                              ("ledger", ledger)) if value is not None}
    answers = provisioning.SetupAnswers(
        service=service, preset=preset, email=email, display_name=display_name, host=host, port=port,
        security=security.lower() if security else None, username=username,
        ca_file=str(ca_file) if ca_file else None, password_command=password_command, timeout=timeout,
        settings=settings)
    if service:
        config.normalize_service(service)
    if password_stdin and password_command:
        raise UsageError("--password-stdin and --password-command exclude each other",
                         "store a password (--password-stdin) or a command that prints it (--password-command)")
    password = _read_stdin_password() if password_stdin else None
    interactive = can_prompt()
    if interactive:
        password = _wizard(answers, existing, password)
    profile_password_known = password is not None or _stored_password_exists(existing)
    missing = provisioning.missing(answers, existing, profile_password_known or _env_password())
    if missing:
        raise UsageError(f"missing {', '.join(missing)}",
                         "stdin is not a terminal, so setup cannot ask; pass these options "
                         "(see `xoromail setup --help`)")
    profile = provisioning.build_profile(state.profile_name, answers, existing, new_password=password is not None)
    if password is not None:
        password = credentials.normalize_password(profile.host, password)
        if not profile.password_command:
            credentials.ensure_keyring_usable()
    if no_validate:
        from xoromail_cli.validate import check_connection_settings

        check_connection_settings(profile)
    else:
        _validate_or_exit(profile, password, validate_to, as_json)
    provisioning.save(state.config_path, profile, None if profile.password_command else password)
    if not as_json:
        out().print(f"[green]Saved[/] profile {profile.name!r} to {state.config_path}"
                    + ("" if profile.password_command or password is None else "; password in the OS keyring"))


def _validate_or_exit(profile: Profile, password: str | None, to: str | None, as_json: bool) -> None:
    from xoromail_cli import credentials
    from xoromail_cli import validate as validation
    from xoromail_cli.cli.console import out, print_json
    from xoromail_cli.cli.render import print_validation

    def get_password() -> str | None:
        return password if password is not None else credentials.resolve_password(profile)

    report = validation.run(profile, get_password, to=to)
    if as_json:
        print_json({**report.to_json(), "saved": report.ok})
    else:
        print_validation(report)
    if not report.ok:
        if not as_json:
            network = report.failed is not None and report.failed.name != "config"
            out().print("[red]Nothing was saved.[/] Fix the problem and run setup again"
                        + (" (or --no-validate to save without the network checks)." if network else "."))
        raise typer.Exit(int(report.exit_code))


def _read_stdin_password() -> str:
    from xoromail_cli.errors import DataError

    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise DataError("--password-stdin read an empty password", "pipe the password on the first line")
    return line


def _env_password() -> bool:
    import os

    from xoromail_cli.credentials import ENV_PASSWORD

    return bool(os.environ.get(ENV_PASSWORD))


def _stored_password_exists(existing: Profile | None) -> bool:
    if existing is None:
        return False
    from xoromail_cli import credentials

    return credentials.password_source(existing).kind != "unset"


def _wizard(answers: SetupAnswers, existing: Profile | None, password: str | None) -> str | None:
    """Ask for whatever the flags did not give; defaults come from presets and the existing profile."""
    from rich.prompt import Confirm, IntPrompt, Prompt

    from xoromail_cli import credentials
    from xoromail_cli.addresses import parse_address
    from xoromail_cli.advisories import exchange_ews
    from xoromail_cli.cli.console import out
    from xoromail_cli.config import NOT_YET_AVAILABLE
    from xoromail_cli.errors import XoromailError
    from xoromail_cli.presets import CUSTOM, PRESETS, preset_for_domain, preset_notes
    from xoromail_cli.provisioning import DEFAULT_PORTS

    console = out()
    if answers.service is None:
        console.print("Service type:\n  1. Web Mail (SMTP)\n  2. Exchange (EWS) — not yet available\n"
                      "  3. Email services (Google sign-in) — not yet available")
        while (choice := Prompt.ask("Choose", choices=["1", "2", "3"], default="1")) != "1":
            label = NOT_YET_AVAILABLE["exchange" if choice == "2" else "google"]
            why = exchange_ews() if choice == "2" else "for Gmail, use Web Mail with a 16-character app password"
            console.print(f"[yellow]{label} is not yet available in this version; choose Web Mail.[/] {why}.")
        answers.service = "smtp"
    while answers.email is None:
        answer = Prompt.ask("Company email address", default=existing.email if existing else None)
        try:
            answers.email = parse_address(answer or "", "email")
        except XoromailError as error:
            console.print(f"[red]{error.message}[/] — {error.hint}")
    if answers.preset is None and answers.host is None:
        keys = [*PRESETS, CUSTOM]
        guess = preset_for_domain(answers.email or "")
        default = existing.preset if existing and existing.preset in keys else (guess.key if guess else None)
        for number, key in enumerate(keys, start=1):
            label = PRESETS[key].label if key in PRESETS else "Other server (enter host and port)"
            console.print(f"  {number}. {label}")
        default_number = str(keys.index(default) + 1) if default else "1"
        picked = Prompt.ask("Provider", choices=[str(n) for n in range(1, len(keys) + 1)],
                            default=default_number)
        answers.preset = keys[int(picked) - 1]
    chosen = PRESETS.get(answers.preset or "")
    if chosen is None:
        while not answers.host:
            answers.host = (Prompt.ask("Outgoing server", default=existing.host if existing else None) or "").strip()
        answers.security = answers.security or Prompt.ask(
            "Security", choices=["starttls", "ssl", "none"], default=existing.security if existing else "starttls")
        answers.port = answers.port or IntPrompt.ask(
            "Port", default=existing.port if existing else DEFAULT_PORTS[answers.security or "starttls"])
    elif chosen.notes:
        console.print(f"[yellow]Note:[/] {preset_notes(chosen)}")
    if answers.display_name is None:
        answers.display_name = Prompt.ask("Display name (shown as the sender)",
                                          default=existing.display_name if existing else None)
    if answers.username is None:
        relay = (answers.security or (existing.security if existing else "")) == "none"
        suggested = "" if relay else (existing.login if existing else answers.email)
        answers.username = Prompt.ask("Username" + (" (empty: no sign-in)" if relay else ""), default=suggested)
    signs_in = (answers.security or (existing.security if existing else "starttls")) != "none" or answers.username
    if password is None and answers.password_command is None and signs_in and not _env_password():
        keep = existing is not None and credentials.password_source(existing).kind != "unset"
        if not (keep and Confirm.ask("Keep the stored password?", default=True)):
            password = Prompt.ask("Password (input hidden)", password=True)
    return password
