"""`xoromail setup`: flags for scripts, a wizard at a terminal; validation decides whether it is saved.

The common options are declared here; each service's own flags come from its `setup_options` and are
added to the command when it is built, so a new service needs no change here.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from xoromail_cli.cli.state import state_of

if TYPE_CHECKING:
    from typer._click import Command as ClickCommand

    from xoromail_cli.config import Profile
    from xoromail_cli.credentials import Secrets
    from xoromail_cli.domain.providers import ProviderGuess
    from xoromail_cli.provisioning import SetupAnswers
    from xoromail_cli.services.base import Question, Service

SERVICE_OPTION_PREFIX = "service_option_"


def setup(
    ctx: typer.Context,
    service: Annotated[str | None, typer.Option(
        metavar="NAME", help="smtp (the ERP's 'Web Mail'; also: webmail). The wizard lists every service.")] = None,
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
        "Sent-ledger: a path, sqlite:///path or postgresql://user@host/db (a password in it goes to the keyring)."
    ))] = None,
    validate_to: Annotated[str | None, typer.Option(
        metavar="ADDR", help="Send the test message here (default: the account itself).")] = None,
    no_validate: Annotated[bool, typer.Option("--no-validate", help="Save without checking.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the validation result as JSON.")] = False,
) -> None:
    """Create or update a profile: checked by sending a test message before it is saved."""
    from xoromail_cli import config, credentials, provisioning, services
    from xoromail_cli.cli.console import can_prompt, out
    from xoromail_cli.errors import UsageError

    state = state_of(ctx)
    existing = config.load(state.config_path).profiles.get(state.profile_name)
    ledger_password = None
    if ledger is not None:
        from xoromail_cli.ledger_url import keep_password_apart

        ledger, ledger_password = keep_password_apart(ledger)
    settings = {key: value for key, value in (("company_name", company_name), ("reply_to", reply_to),
                                              ("ledger", ledger)) if value is not None}
    answers = provisioning.SetupAnswers(
        service=config.normalize_service(service) if service else None, email=email, display_name=display_name,
        ca_file=str(ca_file) if ca_file else None, password_command=password_command, timeout=timeout,
        settings=settings, service_answers=_service_answers(ctx))
    if password_stdin and password_command:
        raise UsageError("--password-stdin and --password-command exclude each other",
                         "store a password (--password-stdin) or a command that prints it (--password-command)")
    password = _read_stdin_password() if password_stdin else None
    if can_prompt():
        password = _wizard(answers, existing, password)
    else:
        answers.service = provisioning.service_name(answers, existing)
    chosen = services.get(answers.service or "smtp")
    _refuse_foreign_options(answers.service or "smtp", answers.service_answers)
    secret_known = password is not None or _stored_password_exists(existing) or _env_password()
    missing = provisioning.missing(answers, existing, secret_known)
    if missing:
        raise UsageError(f"missing {', '.join(missing)}",
                         "stdin is not a terminal, so setup cannot ask; pass these options "
                         "(see `xoromail setup --help`)")
    profile = provisioning.build_profile(state.profile_name, answers, existing, new_password=password is not None)
    if not can_prompt() and existing is None:
        _mx_note(profile, as_json)
    for note in chosen.setup_notes(profile.settings):
        _note(note, as_json)
    secrets = credentials.Secrets(profile, staged=True)
    if password is not None and chosen.needs_password(profile.settings, profile.email):
        secrets.set("password", chosen.normalize_secret(profile.settings, "password", password))
        credentials.ensure_keyring_usable()
    elif profile.password_command:
        secrets.delete("password")
    if ledger_password is not None:
        from xoromail_cli.ledger_url import SECRET_KIND

        secrets.set(SECRET_KIND, ledger_password)
        credentials.ensure_keyring_usable()
    provisioning.check_writable(state.config_path)
    from xoromail_cli.validate import check_connection_settings

    check_connection_settings(profile)
    profile, signed_in = _sign_in(chosen, profile, secrets, answers.service_answers, as_json)
    if not no_validate:
        try:
            _validate_or_exit(profile, secrets, validate_to, as_json)
        except typer.Exit:
            if signed_in:
                chosen.disconnect(profile, secrets)  # a grant given for a profile never saved is revoked
            raise
    stored = password is not None and not profile.password_command
    provisioning.save(state.config_path, profile, secrets)
    if not as_json:
        where = "; password in the OS keyring" if stored else (
            "; the password comes from $XOROMAIL_PASSWORD and was not stored" if _env_password() and password is None
            else "")
        out().print(f"[green]Saved[/] profile {profile.name!r} to {state.config_path}{where}")


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


def _sign_in(service: Service, profile: Profile, secrets: Secrets, answers: dict[str, Any],
             as_json: bool) -> tuple[Profile, bool]:
    """Connect, then Allow (OAuth services): tokens are staged with the other secrets, the settings gain who
    signed in; messages for the person signing in go to stderr with --json, so stdout stays one object.
    Returns the profile to save and whether a sign-in happened."""
    import dataclasses

    from xoromail_cli.cli.console import err, out
    from xoromail_cli.credentials import ensure_keyring_usable

    if not service.secret_kinds or "password" in service.secret_kinds:
        return profile, False
    ensure_keyring_usable()  # tokens live in the keyring only: refuse before anyone signs in
    console = err() if as_json else out()
    result = service.sign_in(profile, secrets, notify=lambda line: console.print(line, soft_wrap=True, markup=False),
                             answers=answers)
    if result is None:
        return profile, False
    for warning in result.warnings:
        _note(warning, as_json)
    return dataclasses.replace(profile, settings=result.settings), True


def _service_answers(ctx: typer.Context) -> dict[str, Any]:
    """The service flags given on the command line, by their `SetupOption.key`."""
    answers = {name.removeprefix(SERVICE_OPTION_PREFIX): value for name, value in ctx.params.items()
               if name.startswith(SERVICE_OPTION_PREFIX) and value not in (None, False)}
    for key in [key for key in answers if key.endswith("_stdin")]:  # --client-secret-stdin and the like
        answers[key.removesuffix("_stdin")] = _read_stdin_secret(f"--{key.replace('_', '-')}")
    return answers


def _read_stdin_secret(flag: str) -> str:
    from xoromail_cli.errors import DataError

    line = sys.stdin.readline().rstrip("\r\n")
    if not line.strip():
        raise DataError(f"{flag} read an empty secret", "pipe the secret on the first line of standard input")
    return line


def _refuse_foreign_options(service_name: str, given: dict[str, Any]) -> None:
    """`--ews-url` with an SMTP profile is a mistake, not something to ignore."""
    from xoromail_cli import services
    from xoromail_cli.errors import UsageError

    own = {option.key for option in services.get(service_name).setup_options}
    flags = {option.key for name in services.REGISTRY for option in services.get(name).setup_options}
    for key in given:
        if key in flags and key not in own:
            owners = [name for name in services.REGISTRY
                      if any(o.key == key for o in services.get(name).setup_options)]
            flag = next(o.flag for o in services.get(owners[0]).setup_options if o.key == key)
            raise UsageError(f"{flag} is an option of the {', '.join(owners)} service, not of {service_name}",
                             f"pass --service {owners[0]}, or leave {flag} out")


def _validate_or_exit(profile: Profile, secrets: Secrets, to: str | None, as_json: bool) -> None:
    from xoromail_cli import validate as validation
    from xoromail_cli.cli.console import out, print_json
    from xoromail_cli.cli.render import print_validation

    report = validation.run(profile, secrets, to=to)
    if as_json:
        print_json({**report.to_json(), "saved": report.ok})
    else:
        print_validation(report)
    if not report.ok:
        if not as_json:
            network = report.failed is not None and report.exit_code in (69, 75)
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


def _ask(question: Question) -> Any:
    """Ask one question until its answer passes the question's own check."""
    from rich.prompt import Prompt

    from xoromail_cli.cli.console import out
    from xoromail_cli.errors import XoromailError

    console = out()
    if question.explain:
        console.print(f"[yellow]Note:[/] {question.explain}")
    while True:
        if question.labels:
            for number, label in enumerate(question.labels, start=1):
                console.print(f"  {number}. {label}")
            numbers = [str(n) for n in range(1, len(question.labels) + 1)]
            default = str(question.choices.index(question.default) + 1) if question.default in question.choices else "1"
            picked = Prompt.ask(question.prompt, choices=numbers, default=default)
            return question.choices[int(picked) - 1]
        text = Prompt.ask(question.prompt, default=question.default, password=question.secret,
                          choices=list(question.choices) or None)
        try:
            return question.check(text or "") if question.check else (text or "")
        except XoromailError as error:
            console.print(f"[red]{error.message}[/] — {error.hint}")


def _mx_guess(email: str) -> ProviderGuess | None:
    """What the domain's MX says (bounded to a few seconds, never failing setup); the note is printed."""
    from xoromail_cli.cli.console import err
    from xoromail_cli.domain.providers import provider_for_email

    guess = provider_for_email(email)
    if guess is not None:
        err().print(f"[yellow]Note:[/] {guess.note}", soft_wrap=True)
    return guess


def _choose_service(answers: SetupAnswers, existing: Profile | None, guess: ProviderGuess | None) -> str:
    from xoromail_cli import services
    from xoromail_cli.services.base import Question

    names = tuple(services.REGISTRY)
    labels = tuple(f"{entry.label} — {entry.summary}" for entry in services.REGISTRY.values())
    fitting = guess.service if guess is not None and guess.service in names else None
    default = existing.service if existing else (fitting or names[0])
    return str(_ask(Question("service", "Service type", default=default, choices=names, labels=labels)))


def _wizard(answers: SetupAnswers, existing: Profile | None, password: str | None) -> str | None:
    """Ask for whatever the flags did not give: the service first, then only that service's questions."""
    from rich.prompt import Confirm, Prompt

    from xoromail_cli import credentials, provisioning, services
    from xoromail_cli.addresses import check_header_value, parse_address
    from xoromail_cli.services.base import Question

    if answers.email is None:
        answers.email = _ask(Question("email", "Company email address", default=existing.email if existing else None,
                                      check=lambda text: parse_address(text, "email")))
    if answers.service is None:
        answers.service = _choose_service(answers, existing, _mx_guess(answers.email or ""))
    service = services.get(answers.service)
    previous = provisioning.existing_settings(answers, existing)
    while (question := service.next_question(answers.service_answers, previous, answers.email or "")) is not None:
        answers.service_answers[question.key] = _ask(question)
    if answers.display_name is None:
        answers.display_name = _ask(Question(
            "display_name", "Display name (shown as the sender)", default=existing.display_name if existing else None,
            check=lambda text: check_header_value("display_name", _non_empty(text, "a display name"))))
    settings = service.build_settings(answers.service_answers, previous, answers.email or "")
    if password is None and answers.password_command is None and not _env_password() \
            and service.needs_password(settings, answers.email or ""):
        keep = existing is not None and credentials.password_source(existing).kind != "unset"
        if not (keep and Confirm.ask("Keep the stored password?", default=True)):
            while not (password := Prompt.ask("Password (input hidden)", password=True)):
                pass
    return password


def _non_empty(text: str, what: str) -> str:
    from xoromail_cli.errors import UsageError

    if not text.strip():
        raise UsageError(f"{what} is needed", "type it, e.g. Company Billing")
    return text.strip()


def _with_service_options(command: Callable[..., None]) -> Callable[..., None]:
    """`command` with every service's own flags added to its signature (once each, grouped by service in
    --help); the command reads them from `ctx.params`, so they are dropped before it is called."""
    import functools
    import inspect

    from xoromail_cli import services

    signature = inspect.signature(command, eval_str=True)
    types: dict[str, Any] = {"text": str, "int": int, "float": float, "path": Path, "flag": bool}
    extra: dict[str, inspect.Parameter] = {}
    for name, entry in services.REGISTRY.items():
        for option in services.get(name).setup_options:
            param = SERVICE_OPTION_PREFIX + option.key
            if param in extra:
                continue
            flag = option.kind == "flag"
            annotation = Annotated[types[option.kind] if flag else types[option.kind] | None, typer.Option(  # type: ignore[valid-type]  # built at run time from each option's kind
                option.flag, metavar=None if flag else option.metavar, help=option.help, rich_help_panel=entry.label)]
            extra[param] = inspect.Parameter(param, inspect.Parameter.KEYWORD_ONLY, default=False if flag else None,
                                             annotation=annotation)

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        command(**{key: value for key, value in kwargs.items() if key not in extra})

    parameters = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in signature.parameters.values()]
    wrapper.__signature__ = signature.replace(parameters=[*parameters, *extra.values()])  # type: ignore[attr-defined]  # read by Typer through inspect.signature
    wrapper.__annotations__ = {p.name: p.annotation for p in (*parameters, *extra.values())}
    return wrapper


def build_command() -> ClickCommand:
    """The setup command: Typer's, plus every service's own options."""
    from xoromail_cli.cli import CONTEXT_SETTINGS

    single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    single.command("setup", context_settings=CONTEXT_SETTINGS)(_with_service_options(setup))
    return typer.main.get_command(single)
