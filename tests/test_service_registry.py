"""Adding a service touches its own package and one registry line, nothing else.

The test writes a throwaway service package into a temporary folder (a "drop folder" service that writes .eml
files through the shared outbox transport), adds its one `ServiceEntry`, and shows that every part that lists
services finds it: names and aliases, setup's flags (grouped under its label) and the check for a foreign flag,
non-interactive setup, the settings file, the domain checks, the protocol check, the contract suite, which
demands a harness for it until one is added, and the real `xoromail setup`, `validate`, `send` and `log` run in a
fresh interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from tests.support.contract_harnesses import HARNESSES, OutboxHarness, harness_for, missing_harnesses
from tests.test_service_protocol_typing import protocol_gaps
from xoromail_cli import config, provisioning, services
from xoromail_cli.compose.envelope import Envelope
from xoromail_cli.errors import ConfigError, UsageError
from xoromail_cli.profile import Profile
from xoromail_cli.services import ServiceEntry
from xoromail_cli.services.base import ServiceBase

PACKAGE = "xoromail_throwaway_drop"
ENTRY = ServiceEntry(name="drop", label="Drop folder",
                     summary="writes each message into a folder another system collects",
                     aliases=("drop-folder", "pickup"), module=f"{PACKAGE}.service")
"""The one registry line the new service needs."""

SERVICE_SOURCE = '''
"""A service that drops messages into a folder: settings, setup, stages and a transport, on the base class."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xoromail_cli.errors import DataError
from xoromail_cli.services.base import Question, ServiceBase, SetupOption, Transport
from xoromail_cli.services.outbox import OutboxTransport


@dataclass(frozen=True)
class DropSettings:
    folder: str

    def to_table(self) -> dict[str, Any]:
        return {"folder": self.folder}

    def check(self) -> None:
        if not self.folder.startswith("/"):
            raise DataError(f"folder {self.folder!r} is not an absolute path", "e.g. /srv/pickup", field="folder")


class DropService(ServiceBase[DropSettings]):
    name = "drop"
    label = "Drop folder"
    secret_kinds = ("pickup_token",)
    setup_options = (SetupOption(flag="--drop-folder", key="drop_folder", help="the folder to drop messages in",
                                 metavar="DIR", kind="path"),)
    settings_type = DropSettings

    def settings_from_table(self, table: Mapping[str, Any]) -> DropSettings:
        unknown = set(table) - {"folder"}
        if unknown:
            raise DataError(f"unknown drop setting {sorted(unknown)[0]!r}", "use only folder",
                            field=sorted(unknown)[0])
        if not isinstance(table.get("folder"), str):
            raise DataError("missing 'folder'", 'add folder = "/srv/pickup"', field="folder")
        return DropSettings(table["folder"])

    def build_settings(self, answers: Mapping[str, Any], existing: Any, email: str) -> DropSettings:
        base = self.own(existing)
        folder = answers.get("drop_folder") or (base.folder if base else None)
        if folder is None:
            raise DataError("--drop-folder is required", "pass --drop-folder DIR", field="folder")
        return DropSettings(str(folder))

    def missing(self, answers: Mapping[str, Any], existing: Any, secret_known: bool,
                email: str | None) -> list[str]:
        return [] if answers.get("drop_folder") or self.own(existing) else ["--drop-folder"]

    def next_question(self, answers: Mapping[str, Any], existing: Any, email: str) -> Question | None:
        return None if "drop_folder" in answers else Question(key="drop_folder", prompt="Folder to drop messages in")

    def describe(self, profile: Any) -> str:
        return f"drops messages into {self.settings_of(profile).folder}"

    def planned_stages(self, profile: Any, send: bool) -> list[str]:
        return ["config", "outbox", *(["send"] if send else [])]

    def open_transport(self, profile: Any, secrets: Any, *, timeout: float | None = None, trace: Any = None,
                       validating: bool = False) -> Transport:
        return OutboxTransport(Path(self.settings_of(profile).folder))


SERVICE = DropService()
'''


@pytest.fixture
def drop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The throwaway package on sys.path and its line in the registry; both gone after the test."""
    package = tmp_path / "site" / PACKAGE
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""A throwaway service."""\n', encoding="utf-8")
    (package / "service.py").write_text(textwrap.dedent(SERVICE_SOURCE), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setitem(services.REGISTRY, ENTRY.name, ENTRY)
    try:
        module = sys.modules.get(f"{PACKAGE}.service") or __import__(f"{PACKAGE}.service", fromlist=["SERVICE"])
        yield module
    finally:
        for name in (f"{PACKAGE}.service", PACKAGE):
            sys.modules.pop(name, None)


def drop_profile(folder: Path, name: str = "drops") -> Profile:
    settings = services.get("drop").settings_from_table({"folder": str(folder)})
    return Profile(name=name, email="billing@company.test", settings=settings, service="drop")


def test_the_registry_line_makes_it_a_service_found_by_name_and_alias(drop: ModuleType) -> None:
    assert services.resolve_name("Pickup") == services.resolve_name("drop-folder") == "drop"
    service = services.get("pickup")
    assert service is drop.SERVICE and isinstance(service, ServiceBase)
    assert protocol_gaps(service) == []
    with pytest.raises(ConfigError) as unknown:
        services.resolve_name("carrier-pigeon")
    assert "drop (drop-folder, pickup)" in (unknown.value.hint or "")


def test_setup_offers_its_flags_grouped_under_its_label_and_refuses_them_for_another_service(
        drop: ModuleType) -> None:
    from xoromail_cli.cli import service_options

    seen: dict[str, Any] = {}

    def command(ctx: typer.Context) -> None:
        """A stand-in for `setup`: the decorator adds every registered service's flags."""
        seen.update(ctx.params)

    app = typer.Typer()
    app.command()(service_options.with_service_options(command))
    app.command("other")(lambda: None)  # two commands, so the wrapped one is invoked by name
    shown = CliRunner().invoke(app, ["command", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"}).output
    assert "Drop folder" in shown and "--drop-folder" in shown and "the folder to drop messages in" in shown
    assert shown.index("Drop folder") < shown.index("--drop-folder")  # in its own panel, after its label
    CliRunner().invoke(app, ["command", "--drop-folder", "/srv/pickup"], catch_exceptions=False)
    assert seen[service_options.SERVICE_OPTION_PREFIX + "drop_folder"] == Path("/srv/pickup")
    with pytest.raises(UsageError) as foreign:
        service_options.refuse_foreign_options("smtp", {"drop_folder": "/srv/pickup"})
    assert foreign.value.message == "--drop-folder is an option of the drop service, not of smtp"


def test_setup_without_prompts_builds_it_and_the_settings_file_keeps_it(drop: ModuleType, tmp_path: Path) -> None:
    answers = provisioning.SetupAnswers(service="pickup", email="billing@company.test", display_name="Billing")
    assert provisioning.missing(answers, None, secret_known=True) == ["--drop-folder"]
    answers.service_answers["drop_folder"] = str(tmp_path / "pickup")
    profile = provisioning.build_profile("drops", answers)
    assert profile.service == "drop" and profile.settings == drop.DropSettings(str(tmp_path / "pickup"))
    path = tmp_path / "config.toml"
    config.save_profile(path, profile)
    assert f'[profiles.drops.drop]\nfolder = "{tmp_path / "pickup"}"' in path.read_text(encoding="utf-8")
    assert config.load_profile(path, "drops") == profile


def test_a_bad_value_in_its_table_is_reported_at_its_line(drop: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[profiles.drops]\nemail = "billing@company.test"\nservice = "drop"\n\n'
                    '[profiles.drops.drop]\nfolder = "relative/path"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as bad:
        config.load_profile(path, "drops")
    assert bad.value.message.startswith(f"{path}:6:") and "not an absolute path" in bad.value.message


def test_it_sends_through_the_shared_engine_and_reads_its_settings_one_way(drop: ModuleType,
                                                                         tmp_path: Path) -> None:
    profile = drop_profile(tmp_path / "pickup")
    transport = services.open_transport(profile, secrets=_NoSecrets())
    transport.open()
    envelope = Envelope(sender="billing@company.test", to=("alice@example.com",),
                        data=b"From: billing@company.test\r\nTo: alice@example.com\r\n"
                             b"Subject: Invoice 1001\r\n\r\nHi\r\n",
                        message_id="<inv-1001@company.test>", label="invoice-1")
    assert transport.send(envelope).ok
    written = list((tmp_path / "pickup").glob("*.eml"))
    assert len(written) == 1 and message_from_bytes(written[0].read_bytes())["Subject"] == "Invoice 1001"
    with pytest.raises(ConfigError) as wrong:  # another service's settings: one error, with the way out
        services.get("drop").settings_of(Profile(name="mail", email="a@company.test", settings=object()))
    assert wrong.value.hint == "run `xoromail --profile mail setup --service drop`"


def test_the_domain_checks_ask_it_and_get_the_bases_answer(drop: ModuleType, tmp_path: Path) -> None:
    from xoromail_cli.domain.report import SendingPath

    assert SendingPath.of(drop_profile(tmp_path)) == SendingPath("drop", None, None)


def test_the_contract_suite_demands_a_harness_until_it_has_one(drop: ModuleType, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              request: pytest.FixtureRequest) -> None:
    assert missing_harnesses() == ["drop"]  # what test_transport_contract asserts for every registered service
    with pytest.raises(LookupError, match="'drop' has no contract harness"):
        harness_for("drop", request, tls=None, tmp_path=tmp_path)  # type: ignore[arg-type]  # never reached
    monkeypatch.setitem(HARNESSES, "drop", lambda request, tls, tmp_path: OutboxHarness(tmp_path))
    assert missing_harnesses() == []


LAUNCHER = """\
import sys
sys.path.insert(0, {site!r})
from xoromail_cli import services
from xoromail_cli.services import ServiceEntry
services.REGISTRY[{name!r}] = {entry!r}  # the registry line, as if in services/__init__.py
from xoromail_cli.cli import main
sys.argv = ["xoromail", *sys.argv[1:]]
main()
"""


def test_the_real_commands_set_it_up_validate_it_and_send_through_it(drop: ModuleType, tmp_path: Path,
                                                                     config_path: Path) -> None:
    """The whole `xoromail` in a fresh interpreter, with nothing but the package and the registry line:
    `setup` takes its flag and validates, `validate` runs its stages, `send` composes an event email and the
    shared engine writes the ledger row."""
    launcher = tmp_path / "xoromail_with_drop.py"
    launcher.write_text(LAUNCHER.format(site=str(tmp_path / "site"), name=ENTRY.name, entry=ENTRY), encoding="utf-8")
    folder = tmp_path / "pickup"
    env = {**os.environ, "XOROMAIL_CONFIG": str(config_path)}

    def xoromail(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(launcher), *args], capture_output=True, text=True, env=env,
                              stdin=subprocess.DEVNULL, timeout=120, check=False)

    setup = xoromail("setup", "--service", "pickup", "--drop-folder", str(folder), "--email", "billing@company.test",
                     "--display-name", "Billing")
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert f'[profiles.default.drop]\nfolder = "{folder}"' in config_path.read_text(encoding="utf-8")
    validated = xoromail("validate", "--json")
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert '"service": "drop"' in validated.stdout and '"name": "outbox"' in validated.stdout
    sent = xoromail("send", "--event", "so-allocation", "--to", "alice@example.com", "--var", "customer_name=Alice",
                    "--var", "order_number=SO-7", "--json")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    event_mail = [message_from_bytes(path.read_bytes()) for path in folder.glob("so-allocation-*.eml")]
    assert len(event_mail) == 1 and "SO-7" in str(event_mail[0]["Subject"])
    assert len(list(folder.glob("*.eml"))) == 3  # setup's and validate's test messages, and the event email
    logged = xoromail("log", "--json")
    assert logged.returncode == 0 and '"service": "drop"' in logged.stdout, logged.stdout + logged.stderr


class _NoSecrets:
    def get(self, kind: str) -> str | None:
        return None

    def set(self, kind: str, value: str) -> None:
        raise AssertionError("the drop service stores no secret")

    def delete(self, kind: str) -> None:
        return None
