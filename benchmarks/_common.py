"""Shared pieces of the benchmarks: the sink process, a throwaway profile, batch files, verdicts."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYTHON = sys.executable
XOROMAIL = str(Path(sys.executable).with_name("xoromail"))
SENDER = "billing@company.test"
PASSWORD = "bench-password"  # noqa: S105  # the sink's throwaway login (see sink_server.py)
COLUMNS = ("to", "customer_name", "invoice_number", "amount_due", "due_date")


class Sink:
    """The STARTTLS + AUTH server of sink_server.py, running in its own process."""

    def __init__(self, process: subprocess.Popen[str], port: int, ca_file: Path) -> None:
        self.process = process
        self.port = port
        self.ca_file = ca_file

    def count(self) -> int:
        """Messages the server has accepted so far."""
        return int(self._ask("count"))

    def cpu(self) -> float:
        """CPU seconds the server process has used so far."""
        return float(self._ask("cpu"))

    def _ask(self, command: str) -> str:
        stdin, stdout = self._pipes()
        stdin.write(command + "\n")
        stdin.flush()
        return stdout.readline().strip()

    def _pipes(self) -> tuple[IO[str], IO[str]]:
        assert self.process.stdin is not None and self.process.stdout is not None
        return self.process.stdin, self.process.stdout


@contextmanager
def sink(folder: Path, *, pipelining: bool = False) -> Iterator[Sink]:
    """Start the server process, wait for its port, and always stop it."""
    extra = ["--pipelining"] if pipelining else []
    process = subprocess.Popen([PYTHON, str(HERE / "sink_server.py"), str(folder), *extra], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline().split()
        if len(first) != 2:
            raise RuntimeError("the sink server did not start")
        yield Sink(process, int(first[0]), Path(first[1]))
    finally:
        stop_helper(process)


def stop_helper(process: subprocess.Popen[str]) -> None:
    """End a helper process started with a stdin pipe: closing stdin asks it to stop; it is killed after 10 s."""
    if process.stdin is not None:
        process.stdin.close()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()


def write_config(path: Path, port: int, ca_file: Path | None, *, host: str = "127.0.0.1",
                 timeout: float = 30.0) -> Path:
    """A one-profile settings file (profile `default`), STARTTLS with the sink's login."""
    lines = ["[profiles.default]", f'email = "{SENDER}"', f'host = "{host}"', f"port = {port}",
             'security = "starttls"', 'display_name = "Company Billing"', 'company_name = "Company Ltd"',
             'currency = "USD"', f"timeout = {timeout}"]
    if ca_file is not None:
        lines.append(f'ca_file = "{ca_file}"')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def environment(folder: Path, config: Path, *, pycache: Path | None = None) -> dict[str, str]:
    """Settings, state (the ledger) and templates all inside `folder`; the password from the environment.

    Bytecode is cached in `pycache` (default `folder/pycache`) through PYTHONPYCACHEPREFIX, as an installed
    xoromail has it, even where PYTHONDONTWRITEBYTECODE is set (as in some sandboxes); `src/` is not written.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("XOROMAIL_")}
    for variable, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state"), ("XDG_DATA_HOME", "data")):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        env[variable] = str(folder / sub)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(XOROMAIL_CONFIG=str(config), XOROMAIL_PASSWORD=PASSWORD, NO_COLOR="1", COLUMNS="100",
               PYTHONPYCACHEPREFIX=str(pycache or folder / "pycache"))
    return env


def without_bytecode_cache(env: dict[str, str]) -> dict[str, str]:
    """The same environment, compiling every module not already cached beside its source on each start."""
    changed = {key: value for key, value in env.items() if key != "PYTHONPYCACHEPREFIX"}
    changed["PYTHONDONTWRITEBYTECODE"] = "1"
    return changed


def row(number: int) -> tuple[str, str, str, str, str]:
    return (f"customer{number}@example.com", f"Customer {number} Ltd", f"INV-{100000 + number}",
            f"{(number * 37) % 10000 + 12.5:.2f}", "2026-10-31")


def write_csv(path: Path, rows: int, start: int = 0) -> Path:
    """A batch for overdue-invoice: `rows` rows with distinct invoice numbers (distinct idempotency keys)."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(",".join(COLUMNS) + "\n")
        for number in range(start, start + rows):
            handle.write(",".join(row(number)) + "\n")
    return path


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(r, widths, strict=True)).rstrip())
