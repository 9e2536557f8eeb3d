"""The setup wizard: one question at a time, each answer checked where it is typed, and a second chance
after a failed validation that keeps every answer but the one that failed.

It asks on the console it is given (stderr under `--json`, so stdout stays one JSON object).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from xoromail_cli.domain.providers import ProviderGuess
    from xoromail_cli.profile import Profile
    from xoromail_cli.provisioning import SetupAnswers
    from xoromail_cli.services.base import Question, Service
    from xoromail_cli.validate import ValidationReport

STOP = "stop"
AGAIN = "again"
"""The retry menu's choice after a refused or cancelled sign-in: sign in again with the same answers."""
COMMON_LABELS = {"again": "none: sign in again with the same answers", "email": "the email address",
                 "password": "the password", "ca_file": "a CA file to trust",
                 "password_command": "the command that prints the password",
                 "client_secret": "the client secret (its Value)"}
ANSWER_LABELS = {
    "preset": "the provider", "host": "the outgoing server", "port": "the port", "security": "the security (TLS)",
    "username": "the username", "login": "whether to sign in", "ews_url": "the Exchange URI (EWS endpoint)",
    "domain": "the mailbox's domain", "auth": "the sign-in method (NTLM or basic)",
    "client_secrets": "the OAuth client file (client_secret_….json)", "redirect_port": "the loopback port",
    "sign_in_timeout": "how long to wait for the sign-in", "api_url": "the Gmail API URL", "tenant": "the tenant",
    "client_id": "the client (application) ID", "certificate": "the certificate file",
    "mode": "delegated or app-only sign-in", "sign_in": "device code or browser sign-in",
    "send_via": "Graph or SMTP", "cloud": "the cloud", "authority_host": "the sign-in host",
    "graph_url": "the Graph URL", "account": "the account that signs in", "no_browser": "whether to open a browser",
    "service_account": "the service account key file", "client_secret_stdin": "the client secret (its Value)",
    "client_secret_expires": "the client secret's expiry date",
    "signs_in": "how xoromail signs in to Google (browser or service account)"}
"""Plain names of the services' answers in the retry menu (an unknown one is named by its question)."""


@dataclass
class Wizard:
    """Asks what the flags did not give; remembers what it asked, so one answer can be asked again."""

    console: Console
    asked: dict[str, str] = field(default_factory=dict)
    """Service answers the wizard asked, in order, with their prompts (flags are not in here)."""
    remarks: set[str] = field(default_factory=set)
    """Notes already printed where an answer was typed (setup does not repeat them)."""
    store_password: bool = True
    """False when the user chose $XOROMAIL_PASSWORD: the typed password is used for the test only."""

    def ask(self, question: Question) -> Any:
        """Ask one question until its answer passes the question's own check."""
        from rich.markup import escape
        from rich.prompt import Prompt

        from xoromail_cli.errors import XoromailError

        if question.explain:
            self.console.print(f"[yellow]Note:[/] {escape(question.explain)}")
        while True:
            if question.labels:
                for number, label in enumerate(question.labels, start=1):
                    self.console.print(f"  {number}. {escape(label)}")
                numbers = [str(n) for n in range(1, len(question.labels) + 1)]
                default = str(question.choices.index(question.default) + 1) \
                    if question.default in question.choices else "1"
                picked = _answer(Prompt.ask, question.prompt, choices=numbers, default=default, console=self.console)
                return question.choices[int(picked) - 1]
            text = _answer(Prompt.ask, question.prompt, default=question.default, password=question.secret,
                           choices=list(question.choices) or None, console=self.console)
            try:
                answer = question.check(text or "") if question.check else (text or "")
            except XoromailError as error:
                self.console.print(f"[red]{escape(error.message)}[/] — {escape(error.hint or '')}")
                continue
            remark = question.remark(answer) if question.remark else None
            if remark:
                self.remarks.add(remark)
                self.console.print(f"[yellow]Note:[/] {escape(remark)}")
            return answer

    def keyring_or_alternative(self, answers: SetupAnswers) -> None:
        """Once a password service is chosen, before its questions: without a secret store the password cannot be
        stored, so say so now and offer a password command or $XOROMAIL_PASSWORD, rather than fail after
        every answer is typed."""
        from rich.markup import escape

        from xoromail_cli import credentials
        from xoromail_cli.errors import KeyringUnavailableError
        from xoromail_cli.services.base import Question

        if answers.password_command or _env_password():
            return
        try:
            credentials.ensure_keyring_usable()
        except KeyringUnavailableError as error:
            self.console.print(f"[yellow]Note:[/] setup cannot store a password here: {escape(error.message)}.")
            choice = self.ask(Question(
                key="keyring", prompt="How should xoromail get the password?", choices=("command", "environment", STOP),
                labels=("a command that prints it (password_command, e.g. `pass show mail/billing`)",
                        f"${credentials.ENV_PASSWORD}, set for every run (nothing is stored)",
                        "stop here: I will set up a secret store first")))
            if choice == STOP:
                raise KeyringUnavailableError(error.message, credentials.NO_KEYRING_HINT) from None
            if choice == "command":
                answers.password_command = self.ask(Question(
                    key="password_command", prompt="Command that prints the password",
                    check=lambda text: _non_empty(text, "a command", "e.g. pass show mail/billing")))
            else:
                self.store_password = False

    def run(self, answers: SetupAnswers, existing: Profile | None, password: str | None) -> str | None:
        """Ask for whatever the flags did not give: the address, the service (the MX suggests one), what that
        service needs to keep its secrets, then only that service's questions."""
        from xoromail_cli import services

        if answers.email is None:
            answers.email = self._ask_email(existing.email if existing else None)
        if answers.service is None:
            answers.service = self._choose_service(existing, self._mx_guess(answers.email))
        if keeps_tokens(services.get(answers.service)):
            require_keyring_for_tokens(services.get(answers.service).label)
        else:
            self.keyring_or_alternative(answers)
        self._service_questions(answers, existing)
        if answers.display_name is None:
            answers.display_name = self.ask(_display_name_question(existing.display_name if existing else None))
        service = services.get(answers.service)
        return self._password(answers, existing, service, password)

    def _mx_guess(self, email: str) -> ProviderGuess | None:
        """What the domain's MX says (bounded to a few seconds, never failing setup), said as a note."""
        from rich.markup import escape

        from xoromail_cli.domain.providers import provider_for_email

        guess = provider_for_email(email)
        if guess is not None:
            self.console.print(f"[yellow]Note:[/] {escape(guess.note)}", soft_wrap=True)
        return guess

    def _choose_service(self, existing: Profile | None, guess: ProviderGuess | None = None) -> str:
        from xoromail_cli import services
        from xoromail_cli.services.base import Question

        names = tuple(services.REGISTRY)
        labels = tuple(f"{entry.label} — {entry.summary}" for entry in services.REGISTRY.values())
        fitting = guess.service if guess is not None and guess.service in names else None
        default = existing.service if existing else (fitting or names[0])
        return str(self.ask(Question(key="service", prompt="Service type", default=default, choices=names,
                                     labels=labels)))

    def _ask_email(self, default: str | None) -> str:
        from xoromail_cli.addresses import parse_address
        from xoromail_cli.services.base import Question

        return str(self.ask(Question(key="email", prompt="Company email address", default=default,
                                     check=lambda text: parse_address(text, "email"))))

    def _service_questions(self, answers: SetupAnswers, existing: Profile | None,
                           previous_answers: dict[str, Any] | None = None) -> None:
        """The service's questions still open; a question asked again offers its earlier answer."""
        from xoromail_cli import provisioning, services

        service = services.get(answers.service or "smtp")
        previous = provisioning.existing_settings(answers, existing)
        earlier = previous_answers or {}
        while (question := service.next_question(answers.service_answers, previous, answers.email or "")) \
                is not None:
            if earlier.get(question.key) is not None and not question.secret:
                question = dataclasses.replace(question, default=str(earlier[question.key]))
            answers.service_answers[question.key] = self.ask(question)
            self.asked[question.key] = question.prompt

    def _password(self, answers: SetupAnswers, existing: Profile | None, service: Service,
                  password: str | None) -> str | None:
        from rich.prompt import Confirm

        from xoromail_cli import credentials, provisioning

        if password is not None or answers.password_command is not None or _env_password():
            return password
        settings = service.build_settings(answers.service_answers, provisioning.existing_settings(answers, existing),
                                          answers.email or "")
        if not service.needs_password(settings, answers.email or ""):
            return None
        keep = existing is not None and self.store_password and credentials.password_source(existing).kind != "unset"
        if keep and _answer(Confirm.ask, "Keep the stored password?", default=True, console=self.console):
            return None
        return self.ask_password()

    def ask_password(self) -> str:
        from xoromail_cli.services.base import Question

        prompt = "Password (input hidden)" if self.store_password else "Password for the test only (input hidden)"
        return str(self.ask(Question(key="password", prompt=prompt, secret=True,
                                     check=_check_password)))

    def change_after_failure(self, report: ValidationReport, answers: SetupAnswers, needs_password: bool) -> str:
        """Which answer to ask again after a failed validation ("stop" to give up), suggesting the likely one."""
        from xoromail_cli.services.base import Question

        keys = [*self.asked, *(k for k in answers.service_answers if k not in self.asked), "email"]
        if needs_password:
            keys.append("password_command" if answers.password_command else "password")
        keys = retry_keys(report, [*keys, "ca_file"])
        labels = menu_labels(keys, self.asked)
        suggested = suggest_change(report, [("password" if key == "password_command" else key) for key in keys])
        suggested = "password_command" if suggested == "password" and answers.password_command else suggested
        return str(self.ask(Question(
            key="change", prompt="Change which answer and try again?", default=suggested, choices=(*keys, STOP),
            labels=(*labels, "nothing: stop here, save nothing"))))

    def ask_again(self, key: str, answers: SetupAnswers, existing: Profile | None) -> str | None:
        """Ask `key` again (and the service answers asked after it, offering their earlier values); returns
        a new password when that is what changed."""
        from xoromail_cli.services.base import Question

        if key == "password":
            return self.ask_password()
        if key == AGAIN:
            return None
        if key == "password_command":
            answers.password_command = self.ask(Question(
                key="password_command", prompt="Command that prints the password", default=answers.password_command,
                check=lambda text: _non_empty(text, "a command", "e.g. pass show mail/billing")))
        elif key == "email":
            answers.email = self._ask_email(answers.email)
        elif key == "ca_file":
            answers.ca_file = str(self.ask(Question(key="ca_file", prompt="CA certificate file (PEM) to trust",
                                                    default=answers.ca_file, check=_check_ca_file)))
        else:
            order = list(self.asked)
            later = order[order.index(key):] if key in order else [key]
            earlier = {name: answers.service_answers.pop(name, None) for name in later}
            for name in later:
                self.asked.pop(name, None)
            self._service_questions(answers, existing, earlier)
        return None


def keeps_tokens(service: Service) -> bool:
    """A sign-in service (Google, Microsoft 365): what it stores are tokens, which only the secret store holds
    (a password command or $XOROMAIL_PASSWORD cannot)."""
    return bool(service.secret_kinds) and "password" not in service.secret_kinds


def require_keyring_for_tokens(label: str) -> None:
    """Stop before the sign-in's questions when nothing could keep its tokens, saying what would."""
    from xoromail_cli import credentials
    from xoromail_cli.errors import KeyringUnavailableError
    from xoromail_cli.stores.keyrings import TOKEN_HINT

    try:
        credentials.ensure_keyring_usable()
    except KeyringUnavailableError as error:
        raise KeyringUnavailableError(
            f"{label} keeps its sign-in (tokens) in a secret store (the OS keyring or the encrypted file), and "
            f"none may be used here: {error.message}", TOKEN_HINT) from None


def _answer(ask: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """One prompt; the end of input (Ctrl-D, a closed terminal) ends setup with nothing saved, not a traceback."""
    from xoromail_cli.errors import UsageError

    try:
        return ask(*args, **kwargs)
    except EOFError:
        raise UsageError("setup stopped: the input ended at a question",
                         "nothing was saved; run setup again, or pass every option (see `xoromail setup --help`)"
                         ) from None


def retry_keys(report: ValidationReport, keys: list[str]) -> list[str]:
    """The menu's answers; after a failed sign-in, first "sign in again unchanged" (a cancel, a slow approval)."""
    failed = report.failed
    return [AGAIN, *keys] if failed is not None and failed.name == "sign-in" else keys


def suggest_change(report: ValidationReport, keys: list[str]) -> str:
    """The answer most likely at fault: the password after a refused sign-in, a CA file for an untrusted
    certificate, the server (or provider) when it could not be reached or spoke another protocol."""
    failed = report.failed
    detail = failed.detail if failed else ""
    stage = failed.name if failed else ""
    if "not trusted" in detail and "ca_file" in keys:
        return "ca_file"
    if stage == "auth" and "password" in keys:
        return "password"
    if stage == "send" and int(report.exit_code) == 77:
        return "email"
    refused = stage == "sign-in" and int(report.exit_code) == 77  # MFA, consent, a policy: the answers were valid
    mentioned = _first_mentioned(failed.hint if failed else None, keys, flags_only=refused)
    if mentioned is not None:
        return mentioned
    if AGAIN in keys:
        return AGAIN
    wanted = ("port", "security") if stage in ("ehlo", "tls") else ("host", "preset", "port")
    return next((key for key in (*wanted, *keys) if key in keys), STOP)


def menu_labels(keys: list[str], asked: dict[str, str]) -> list[str]:
    """How the retry menu names each answer: plain words ("the client (application) ID"), never a key."""
    return [COMMON_LABELS.get(key) or ANSWER_LABELS.get(key) or _label(asked.get(key) or key.replace("_", " "))
            for key in keys]


def _first_mentioned(hint: str | None, keys: list[str], *, flags_only: bool = False) -> str | None:
    """The answer a hint talks about first (`client ID …`, `--tenant`), so the retry menu offers what the hint
    says to fix; the email, password and CA file have rules of their own. With `flags_only`, only an option
    the hint tells to use counts ("the tenant requires MFA" does not say the tenant is wrong)."""
    if not hint:
        return None
    text = hint.lower()
    places: dict[str, int] = {}
    for key in keys:
        if key in ("email", "password", "ca_file"):
            continue
        words = () if key == "sign_in" or flags_only else (key.replace("_", " "),)  # "sign in": in every hint
        for form in (*words, f"--{key.replace('_', '-')}"):
            found = text.find(form)
            if found >= 0:
                places[key] = min(found, places.get(key, found))
    return min(places, key=lambda key: places[key]) if places else None


def unreachable(report: ValidationReport) -> bool:
    """The server could not be reached (69/75): only then can --no-validate be a sensible way out."""
    return report.failed is not None and int(report.exit_code) in (69, 75)


def _label(prompt: str) -> str:
    return f"the {prompt[0].lower()}{prompt[1:]}" if prompt else prompt


def _display_name_question(default: str | None) -> Question:
    from xoromail_cli.addresses import check_header_value
    from xoromail_cli.services.base import Question

    return Question(key="display_name", prompt="Display name (shown as the sender)", default=default,
                    check=lambda text: check_header_value(
                        "display_name", _non_empty(text, "a display name", "type it, e.g. Company Billing")))


def _check_ca_file(text: str) -> str:
    from xoromail_cli.errors import NoInputError

    path = Path(text.strip()).expanduser()
    if not path.is_file():
        raise NoInputError(f"{text.strip() or 'the path'} is not a file",
                           "the PEM file of the CA that issued the server's certificate (ask the mail admin)")
    return str(path.resolve())


def _check_password(text: str) -> str:
    """Not stripped: spaces may be part of a password (Google's app passwords lose theirs later)."""
    from xoromail_cli.errors import UsageError

    if not text:
        raise UsageError("a password is needed", "type the password (it is not shown)")
    return text


def _non_empty(text: str, what: str, example: str) -> str:
    from xoromail_cli.errors import UsageError

    if not text.strip():
        raise UsageError(f"{what} is needed", example)
    return text.strip()


def _env_password() -> bool:
    import os

    from xoromail_cli.credentials import ENV_PASSWORD

    return bool(os.environ.get(ENV_PASSWORD))
