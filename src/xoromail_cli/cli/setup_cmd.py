"""`xoromail setup`: flags for scripts, a wizard at a terminal; validation decides whether it is saved.

The common options are declared here; each service's own flags come from its `setup_options` and are
added to the command when it is built, so a new service needs no change here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from xoromail_cli.cli.console import stdin_secret
from xoromail_cli.cli.service_options import refuse_foreign_options, service_answers, with_service_options
from xoromail_cli.cli.state import state_of

if TYPE_CHECKING:
    from typer._click import Command as ClickCommand

    from xoromail_cli.cli.wizard import Wizard
    from xoromail_cli.errors import XoromailError
    from xoromail_cli.profile import Profile
    from xoromail_cli.provisioning import SetupAnswers
    from xoromail_cli.services.base import SecretStore, Service
    from xoromail_cli.validate import ValidationReport

def setup(
    ctx: typer.Context,
    service: Annotated[str | None, typer.Option(
        metavar="NAME", help=("smtp (Web Mail), exchange (Exchange, EWS), google (Email services: Google "
                              "sign-in) or microsoft365 (Microsoft 365 sign-in). Without it the wizard asks."))] = None,
    email: Annotated[str | None, typer.Option(metavar="ADDR", help="The company address mail comes from.")] = None,
    display_name: Annotated[str | None, typer.Option(metavar="NAME", help="Shown as the sender's name.")] = None,
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
        "Sent-ledger: a path, sqlite:///path or postgresql://user@host/db (its password in PGPASSWORD, which "
        "setup keeps in the secret store; never in the URL)."
    ))] = None,
    validate_to: Annotated[str | None, typer.Option(
        metavar="ADDR", help="Send the test message here (default: the account itself).")] = None,
    no_validate: Annotated[bool, typer.Option("--no-validate", help="Save without checking.")] = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the validation result as JSON (wizard questions go to stderr).")] = False,
) -> None:
    """Create or update a profile: checked by sending a test message before it is saved."""
    from rich.markup import escape

    from xoromail_cli import config, provisioning, services
    from xoromail_cli.cli.console import can_prompt, err, out
    from xoromail_cli.cli.wizard import Wizard
    from xoromail_cli.errors import UsageError

    state = state_of(ctx)
    existing = config.load(state.config_path).profiles.get(state.profile_name)
    former = provisioning.owner_check(state.config_path, state.profile_name)  # before a question or a write
    ledger_password = None
    if ledger is not None:
        from xoromail_cli.ledger.location import keep_password_apart

        ledger, ledger_password = keep_password_apart(ledger)
    settings = {key: value for key, value in (("company_name", company_name), ("reply_to", reply_to),
                                              ("ledger", ledger)) if value is not None}
    answers = provisioning.SetupAnswers(
        service=provisioning.service_option(service) if service else None, email=email, display_name=display_name,
        ca_file=str(ca_file) if ca_file else None, password_command=password_command, timeout=timeout,
        settings=settings, service_answers=service_answers(ctx))
    answers.service = answers.service or provisioning.implied_service(answers.service_answers, existing)
    if password_stdin and password_command:
        raise UsageError("--password-stdin and --password-command exclude each other",
                         "store a password (--password-stdin) or a command that prints it (--password-command)")
    password = stdin_secret("--password-stdin", "password", blank_is_empty=False) if password_stdin else None
    wizard = Wizard(err() if as_json else out()) if can_prompt() else None
    if wizard is not None:
        password = wizard.run(answers, existing, password)
    else:
        answers.service = provisioning.service_name(answers, existing)
    services.get(answers.service or "smtp")  # refuses a service type that is not available yet
    refuse_foreign_options(answers.service or "smtp", answers.service_answers)
    secret_known = password is not None or _stored_password_exists(existing) or _env_password()
    missing = provisioning.missing(answers, existing, secret_known)
    if missing:
        why = "stdin is not a terminal, so setup cannot ask" if wizard is None else "the answers leave these open"
        raise UsageError(f"missing {', '.join(missing)}", f"{why}; pass these options (see `xoromail setup --help`)")
    provisioning.check_writable(state.config_path)
    attempt = _Attempt(state.profile_name, answers, existing, as_json, wizard, ledger_password)
    while not attempt.run(password, validate_to, no_validate):
        password = attempt.second_chance(password)
    store = wizard is None or wizard.store_password
    kept = attempt.secrets.staged_kinds()
    dropped = provisioning.drop_unused_secrets(existing, attempt.profile, attempt.secrets)
    provisioning.save(state.config_path, attempt.profile, attempt.secrets, adopt=former is not None)
    _adopted_note(state.profile_name, former, as_json)
    if not as_json:
        where = _where_the_secret_is(attempt.profile, attempt.needs_password, kept, password, store)
        where += f"; the {_kinds(dropped)} of its earlier service {'was' if len(dropped) == 1 else 'were'} removed" \
            if dropped else ""
        out().print(f"[green]Saved[/] profile {attempt.profile.name!r} to {state.config_path}{escape(where)}")


_ENV = "XOROMAIL_PASSWORD"


def _where_the_secret_is(profile: Profile, needs_password: bool, kept: list[str], password: str | None,
                         store: bool) -> str:
    """What the saved line says of the secrets: what was stored and where, and nothing that is not true of this
    profile (no password claimed for a relay without sign-in)."""
    from xoromail_cli import services
    from xoromail_cli.cli.wizard import keeps_tokens

    if not kept and not needs_password and not keeps_tokens(services.get(profile.service)):
        from xoromail_cli.credentials import NO_SIGN_IN

        return f"; {NO_SIGN_IN}"
    where = f"; {_kinds(kept)} in {_store_label()}" if kept else ""
    if needs_password and "password" not in kept:
        if profile.password_command:
            where += "; the password comes from its password_command"
        elif (_env_password() and password is None) or not store:
            where += f"; the password comes from ${_ENV} and was not stored"
    return where


def _kinds(kinds: list[str]) -> str:
    """`password`, `refresh token, access token and client secret`: the secrets setup stored."""
    names = [kind.replace("_", " ") for kind in kinds]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _store_label() -> str:
    """What holds the secrets setup just stored ("Secret Service", "encrypted file PATH (key: …)", …)."""
    from xoromail_cli.credentials import store_label

    return store_label()


class _Attempt:
    """One try at building and validating the profile; the wizard may change an answer and try again."""

    def __init__(self, name: str, answers: SetupAnswers, existing: Profile | None, as_json: bool,
                 wizard: Wizard | None, ledger_password: str | None = None) -> None:
        self.name, self.answers, self.existing, self.as_json, self.wizard = name, answers, existing, as_json, wizard
        self.ledger_password = ledger_password
        self.report: ValidationReport | None = None
        self.shown: set[str] = wizard.remarks if wizard is not None else set()

    def run(self, password: str | None, validate_to: str | None, no_validate: bool) -> bool:
        """Build, stage the secret, validate; True when the profile may be saved."""
        from xoromail_cli import credentials, provisioning, services
        from xoromail_cli.errors import KeyringUnavailableError, XoromailError

        self.profile = provisioning.build_profile(self.name, self.answers, self.existing,
                                                  new_password=password is not None)
        chosen = services.get(self.profile.service)
        self._show_notes(chosen)
        self.secrets = credentials.Secrets(self.profile, staged=True)
        check_with = self._stage_secrets(chosen, password)
        from xoromail_cli.validate import check_connection_settings

        check_connection_settings(self.profile)
        try:
            signed_in = self._sign_in(chosen)
        except XoromailError as error:
            if self.wizard is None or self.as_json or isinstance(error, KeyringUnavailableError):
                raise
            return self._sign_in_refused(error)
        if no_validate:
            return True
        try:
            return self._validate(check_with, validate_to)
        except typer.Exit:
            if signed_in:
                chosen.disconnect(self.profile, self.secrets)  # a grant given for a profile never saved is revoked
            raise

    def _sign_in_refused(self, error: XoromailError) -> bool:
        """A refused interactive sign-in (a wrong client ID, a cancelled page) is shown as a failed check is: the
        stage table, then the retry menu, whose default is the answer the hint names."""
        from xoromail_cli.cli.render import print_validation
        from xoromail_cli.validate import refused_sign_in

        self.report = refused_sign_in(self.profile, error)
        print_validation(self.report)
        return False

    def _show_notes(self, chosen: Service) -> None:
        if self.wizard is None and self.existing is None and "mx" not in self.shown:
            self.shown.add("mx")
            _mx_note(self.profile, self.as_json)
        for note in chosen.setup_notes(self.profile.settings):
            if note not in self.shown:  # once per setup, also when the wizard tries again
                self.shown.add(note)
                _note(note, self.as_json)

    def _stage_secrets(self, chosen: Service, password: str | None) -> SecretStore:
        """Stage the typed password (or drop a stored one) and the ledger's; the store validation reads."""
        from xoromail_cli import credentials

        check_with: SecretStore = self.secrets
        self.needs_password = chosen.needs_password(self.profile.settings, self.profile.email)
        if password is not None and self.needs_password:
            value = chosen.normalize_secret(self.profile.settings, "password", password)
            if self.wizard is not None and not self.wizard.store_password:
                check_with = _TypedPassword(self.secrets, value)
            else:
                self.secrets.set("password", value)
                credentials.ensure_keyring_usable()
        elif self.profile.password_command:
            self.secrets.delete("password")
        if self.ledger_password is not None:
            from xoromail_cli.ledger.location import SECRET_KIND

            self.secrets.set(SECRET_KIND, self.ledger_password)
            credentials.ensure_keyring_usable()
        return check_with

    def _sign_in(self, service: Service) -> bool:
        """Connect, then Allow (OAuth services): tokens are staged with the other secrets and the settings
        gain who signed in; with --json the sign-in's messages go to stderr, so stdout stays one object."""
        import dataclasses

        from xoromail_cli.cli.console import err, out
        from xoromail_cli.cli.wizard import keeps_tokens, require_keyring_for_tokens

        if not keeps_tokens(service):
            return False
        require_keyring_for_tokens(service.label)  # tokens live in the keyring only: refuse before anyone signs in
        console = err() if self.as_json else out()
        result = service.sign_in(self.profile, self.secrets, answers=self.answers.service_answers,
                                 notify=lambda line: console.print(line, soft_wrap=True, markup=False))
        if result is None:
            return False
        for warning in result.warnings:
            _note(warning, self.as_json)
        self.profile = dataclasses.replace(self.profile, settings=result.settings)
        return True

    def _validate(self, secrets: SecretStore, to: str | None) -> bool:
        from xoromail_cli import validate as validation
        from xoromail_cli.cli.console import out, print_json
        from xoromail_cli.cli.render import print_validation, report_json
        from xoromail_cli.cli.wizard import unreachable

        if self.as_json:
            report = self.report = validation.run(self.profile, secrets, to=to)
        else:
            from xoromail_cli.cli.progress import StageProgress

            with StageProgress(self.profile.name) as shown:
                report = self.report = validation.run(self.profile, secrets, to=to, on_stage=shown)
        if self.as_json:
            print_json({**report_json(report), "saved": report.ok})
        else:
            print_validation(report)
        if report.ok:
            return True
        if self.wizard is not None and not self.as_json:
            return False
        if not self.as_json:
            out().print("[red]Nothing was saved.[/] Fix the problem and run setup again"
                        + (" (or --no-validate to save without the network checks)." if unreachable(report)
                           else "."))
        raise typer.Exit(int(report.exit_code))

    def second_chance(self, password: str | None) -> str | None:
        """Ask which answer to change (the failing one first); stop with the stage's exit code otherwise."""
        from xoromail_cli.cli.wizard import STOP, unreachable

        assert self.wizard is not None and self.report is not None  # only the wizard gets here after a failure
        key = self.wizard.change_after_failure(self.report, self.answers, self.needs_password)
        if key == STOP:
            self.wizard.console.print(
                "[red]Nothing was saved.[/]" + (" Run setup again when the server can be reached, or use "
                                               "--no-validate to save without the network checks."
                                               if unreachable(self.report) else ""))
            raise typer.Exit(int(self.report.exit_code))
        return self.wizard.ask_again(key, self.answers, self.existing) or password


class _TypedPassword:
    """The password typed for the test when it is not to be stored ($XOROMAIL_PASSWORD at run time)."""

    def __init__(self, secrets: SecretStore, password: str) -> None:
        self._secrets, self._password = secrets, password

    def get(self, kind: str) -> str | None:
        return self._password if kind == "password" else self._secrets.get(kind)

    def set(self, kind: str, value: str) -> None:
        self._secrets.set(kind, value)

    def delete(self, kind: str) -> None:
        self._secrets.delete(kind)


def _mx_note(profile: Profile, as_json: bool) -> None:
    """With flags, what the MX implies is a note, and only when it differs from what was chosen."""
    from xoromail_cli.domain.providers import provider_for_email

    guess = provider_for_email(profile.email)
    preset = getattr(profile.settings, "preset", None)
    if guess is not None and profile.service != guess.service and preset != guess.preset:
        _note(guess.note, as_json)


def _note(text: str, as_json: bool) -> None:
    """A warning that does not stop setup; on stderr with --json, so stdout stays one JSON object."""
    from rich.markup import escape

    from xoromail_cli.cli.console import err, out

    (err() if as_json else out()).print(f"[yellow]Note:[/] {escape(text)}")


def _adopted_note(profile_name: str, former: Path | None, as_json: bool) -> None:
    """Say that this settings file took the profile's secrets over from a file that lost it (or is gone)."""
    if former is not None:
        from xoromail_cli.stores.owners import adopted_note, profile_scope

        _note(adopted_note(profile_scope(profile_name), former), as_json)


def _env_password() -> bool:
    import os

    from xoromail_cli.credentials import ENV_PASSWORD

    return bool(os.environ.get(ENV_PASSWORD))


def _stored_password_exists(existing: Profile | None) -> bool:
    if existing is None:
        return False
    from xoromail_cli import credentials

    return credentials.password_source(existing).kind != "unset"


def build_command() -> ClickCommand:
    """The setup command: Typer's, plus every service's own options."""
    from xoromail_cli.cli import CONTEXT_SETTINGS

    single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    single.command("setup", context_settings=CONTEXT_SETTINGS)(with_service_options(setup))
    return typer.main.get_command(single)
