"""Shared parts of the relay tests: the relay in this process or as a real `xoromail relay` process,
messages an ERP would submit, and a smtplib client that submits them (`raw_data`: DATA sent exactly as given)."""

from __future__ import annotations

import os
import smtplib
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.support.cli import SCRIPT
from tests.support.common import USER
from xoromail_cli.compose.envelope import Envelope
from xoromail_cli.profile import Profile
from xoromail_cli.relay.delivery import DeliveryOptions, DeliveryWorker
from xoromail_cli.relay.message import SenderPolicy
from xoromail_cli.relay.server import RelayCredential, RelayHandler, RelayServer
from xoromail_cli.relay.spool import Spool

RELAY_USER, RELAY_PASSWORD = "erp", "relay-pass-7Qx-long-enough"


def erp_message(number: int = 1, *, sender: str = "billing@company.test", to: str = "customer@client.test",
                cc: str | None = None, attachment: bytes | None = None) -> EmailMessage:
    """What an ERP's Web Mail sends: its own headers, a text body, maybe a PDF."""
    message = EmailMessage()
    message["From"] = f"Company Billing <{sender}>"
    message["To"] = to
    if cc:
        message["Cc"] = cc
    message["Subject"] = f"Invoice INV-{number}"
    message["Message-ID"] = f"<erp.{number}.{os.getpid()}.{time.monotonic_ns()}@company.test>"
    message["X-ERP-Document"] = f"INV-{number}"
    message.set_content(f"Dear customer,\n\nplease find invoice INV-{number} attached.\n")
    if attachment is not None:
        message.add_attachment(attachment, maintype="application", subtype="pdf", filename=f"INV-{number}.pdf")
    return message


def submit(port: int, message: EmailMessage, *, recipients: list[str] | None = None,
           user: str = RELAY_USER, password: str = RELAY_PASSWORD, sender: str | None = None) -> None:
    """Submit like an ERP: connect, AUTH, MAIL/RCPT/DATA; raises smtplib's exceptions on a refusal."""
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
        client.login(user, password)
        client.send_message(message, from_addr=sender, to_addrs=recipients)


def spool_with_held(root: Path, messages: int, held: int) -> Spool:
    """A spool the relay finds at start: `messages` queued, the first `held` of them held for a person."""
    spool = Spool(root)
    for number in range(messages):
        data = f"From: {USER}\r\nTo: customer@client.test\r\nSubject: INV-{number}\r\n\r\ninvoice\r\n".encode()
        spooled = spool.put(Envelope(sender=USER, to=("customer@client.test",), data=data,
                                     message_id=f"<inv.{number}@company.test>"))
        if number < held:
            assert spool.hold(spooled)
    return spool


def wait_for(condition: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@dataclass(kw_only=True)
class InProcessRelay:
    """The relay's server and worker in this process (threads), with every log line kept."""

    profile: Profile
    spool: Spool
    options: DeliveryOptions
    policy: SenderPolicy
    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.worker = DeliveryWorker(self.profile, self.spool, self.log, self.options)
        handler = RelayHandler(self.spool, self.policy, self.log, self.worker.wake)
        self.server = RelayServer(handler, RelayCredential(RELAY_USER, RELAY_PASSWORD), "127.0.0.1", 0, tls=None)

    def log(self, line: str) -> None:
        assert "\n" not in line
        with self._lock:
            self.lines.append(line)

    def logged(self, kind: str) -> list[str]:
        with self._lock:
            return [line for line in self.lines if line.split(" ", 1)[0] == kind]

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> InProcessRelay:
        self.server.start()
        self.worker.start()
        return self

    def stop(self) -> None:
        self.server.stop()
        self.worker.stop(30)


RelayFactory = Callable[..., InProcessRelay]


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[RelayFactory]:
    started: list[InProcessRelay] = []

    def start(profile: Profile, *, rewrite: bool = False, allow: frozenset[str] = frozenset(),
              **options: object) -> InProcessRelay:
        values: dict[str, object] = {"retry_delay": 0.2, "idle": 0.2, "timeout": 5.0}
        values.update(options)
        instance = InProcessRelay(profile=profile, spool=Spool(tmp_path / "spool"), options=DeliveryOptions(**values),  # type: ignore[arg-type]  # test keywords
                                  policy=SenderPolicy(mailbox=profile.email, display_name=profile.display_name,
                                                      allowed=allow, rewrite=rewrite)).start()
        started.append(instance)
        return instance

    yield start
    for instance in started:
        instance.stop()


@dataclass
class RelayProcess:
    """A real `xoromail relay` process; its stderr lines are read by a thread."""

    args: list[str]
    env: dict[str, str]
    lines: list[str] = field(default_factory=list)
    files: int | None = None
    """The process's limit of open files (RLIMIT_NOFILE), to meet it with few connections."""

    def _limit(self) -> None:
        import resource

        if self.files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (self.files, self.files))

    def __post_init__(self) -> None:
        self.process = subprocess.Popen([SCRIPT, *self.args], env=self.env, stdin=subprocess.PIPE,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                        preexec_fn=self._limit if self.files else None)
        assert self.process.stdin is not None
        self.process.stdin.write(RELAY_PASSWORD + "\n")
        self.process.stdin.close()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        wait_for(lambda: any(line.startswith("listening ") for line in self.lines) or self.process.poll() is not None,
                 timeout=60, what="the relay to listen")  # a process start: slow on a loaded machine
        found = [line for line in self.lines if line.startswith("listening ")]
        assert found, "\n".join(self.lines)
        self.port = int(found[0].split("address=", 1)[1].split()[0].rsplit(":", 1)[1])

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def logged(self, kind: str) -> list[str]:
        return [line for line in list(self.lines) if line.split(" ", 1)[0] == kind]

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)
        self._reader.join(5)

    def terminate(self, timeout: float = 30.0) -> int:
        self.process.terminate()
        code = self.process.wait(timeout)
        self._reader.join(5)
        return code


def relay_process(config_path: Path, *extra: str, files: int | None = None) -> RelayProcess:
    """Start the installed CLI as systemd would, with this test's config, state and (file) keyring."""
    args = ["--config", str(config_path), "relay", "--listen", "127.0.0.1:0", "--user", RELAY_USER,
            "--password-stdin", "--retry-delay", "0.2", *extra]
    return RelayProcess(args, dict(os.environ), files=files)


def raw_data(port: int, data: bytes, *, sender: str = USER, to: str = "customer@client.test") -> tuple[int, bytes]:
    """MAIL, RCPT and DATA with `data` sent exactly as given (smtplib's data() would fix its line ends)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
        client.login(RELAY_USER, RELAY_PASSWORD)
        assert client.mail(sender)[0] == 250
        assert client.rcpt(to)[0] == 250
        assert client.docmd("DATA")[0] == 354
        client.send(data + (b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n"))
        return client.getreply()
