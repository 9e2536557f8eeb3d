"""Start-up cost: `xoromail --help` against a bare two-command Typer app, and which heavy modules load.

Targets:
  1. median wall time of `xoromail --help` / median of a bare two-command Typer app's `--help`
     (same Python, runs alternated) <= 1.1 (issue 24; it was 1.2)
  2. `xoromail --help` and `xoromail send --help` import none of the other services' libraries
     (exchangelib, msal, google-auth, requests, dnspython, psycopg, checkdmarc) nor aiosmtpd, jinja2, keyring
  3. a real `xoromail send --batch` to a local STARTTLS + AUTH server imports none of those service
     libraries nor aiosmtpd
  4. `xoromail send --batch --dry-run` imports none of those service libraries nor aiosmtpd or smtplib

Run: .venv/bin/python benchmarks/startup.py  [--runs 15]
Exits non-zero if a target is missed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import (
    PYTHON,
    XOROMAIL,
    environment,
    median,
    print_table,
    sink,
    verdict,
    without_bytecode_cache,
    write_config,
    write_csv,
)

RATIO_TARGET = 1.1
SERVICE_LIBRARIES = ("exchangelib", "msal", "google", "requests", "dns", "psycopg", "checkdmarc")
"""Top-level modules of the other services' and checks' libraries: google is google-auth, dns is dnspython."""
HELP_FORBIDDEN = (*SERVICE_LIBRARIES, "aiosmtpd", "jinja2", "keyring")
SEND_FORBIDDEN = (*SERVICE_LIBRARIES, "aiosmtpd")
DRY_RUN_FORBIDDEN = (*SERVICE_LIBRARIES, "aiosmtpd", "smtplib")
REPORTED = (*HELP_FORBIDDEN, "smtplib", "urllib3", "requests_ntlm", "spnego", "google_auth_oauthlib", "rich", "typer",
            "pydantic", "sqlite3", "ssl", "email", "platformdirs", "trustme")

BARE_APP = '''\
import typer

app = typer.Typer(add_completion=False)


@app.command()
def hello(name: str, count: int = 1) -> None:
    """Say hello."""
    for _ in range(count):
        typer.echo(f"hello {name}")


@app.command()
def goodbye(name: str, formal: bool = False) -> None:
    """Say goodbye."""
    typer.echo(("Farewell " if formal else "Bye ") + name)


if __name__ == "__main__":
    app()
'''

# Runs the CLI in this process, then writes the top-level names of every imported module as JSON.
IN_PROCESS = '''\
import json
import os
import sys

from xoromail_cli.cli import app

try:
    code = app(sys.argv[1:], standalone_mode=False)
except SystemExit as exit_:
    code = exit_.code
with open(os.environ["BENCH_MODULES_OUT"], "w", encoding="utf-8") as handle:
    json.dump({"exit": code if isinstance(code, int) else 0,
               "modules": sorted({name.split(".")[0] for name in sys.modules})}, handle)
'''


def timed(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def imported(folder: Path, args: list[str], env: dict[str, str]) -> tuple[int, set[str]]:
    """Exit code and top-level modules of one in-process run of the CLI with `args`."""
    script = folder / "in_process.py"
    script.write_text(IN_PROCESS, encoding="utf-8")
    out = folder / "modules.json"
    subprocess.run([PYTHON, str(script), *args], env={**env, "BENCH_MODULES_OUT": str(out)},
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    data = json.loads(out.read_text(encoding="utf-8"))
    out.unlink()
    return int(data["exit"]), set(data["modules"])


def import_costs(env: dict[str, str], limit: int = 8) -> list[tuple[int, str]]:
    """The costliest imports of `xoromail --help` (cumulative microseconds, `python -X importtime`)."""
    done = subprocess.run([PYTHON, "-X", "importtime", "-c",
                           "import sys; from xoromail_cli.cli import main; sys.argv = ['xoromail', '--help']; main()"],
                          env=env, capture_output=True, text=True, check=False)
    costs = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|", 2)
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        if depth <= 1:
            costs.append((int(cumulative), ("  " * depth) + name.strip()))
    return sorted(costs, reverse=True)[:limit]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="runs of each command, alternated (default 15)")
    args = parser.parse_args()
    results: list[tuple[str, bool]] = []

    with tempfile.TemporaryDirectory(prefix="xoromail-bench-") as name:
        folder = Path(name)
        bare = folder / "bare_app.py"
        bare.write_text(BARE_APP, encoding="utf-8")
        env = environment(folder, write_config(folder / "config.toml", 587, None))
        commands = {"xoromail --help": [XOROMAIL, "--help"], "bare Typer app --help": [PYTHON, str(bare), "--help"]}
        modes = {"bytecode cached": env, "no bytecode cache": without_bytecode_cache(env)}
        for command in commands.values():  # warm the page cache and fill the bytecode cache
            timed(command, env)
            timed(command, env)
        times: dict[tuple[str, str], list[float]] = {(mode, label): [] for mode in modes for label in commands}
        for _ in range(args.runs):
            for mode, mode_env in modes.items():
                for label, command in commands.items():
                    times[mode, label].append(timed(command, mode_env))
        print(f"startup: median of {args.runs} alternated runs each, Python {sys.version.split()[0]}")
        print_table([["command", "bytecode", "median ms", "min ms", "max ms"],
                     *[[label, mode, f"{median(t) * 1000:.1f}", f"{min(t) * 1000:.1f}", f"{max(t) * 1000:.1f}"]
                       for (mode, label), t in times.items()]])
        for mode in modes:
            ratio = median(times[mode, "xoromail --help"]) / median(times[mode, "bare Typer app --help"])
            best = min(times[mode, "xoromail --help"]) / min(times[mode, "bare Typer app --help"])
            if mode == "bytecode cached":
                ok = ratio <= RATIO_TARGET
                results.append(("--help ratio", ok))
                print(f"ratio xoromail / bare Typer, bytecode cached (as installed) = {ratio:.2f} "
                      f"(target <= {RATIO_TARGET}): {verdict(ok)}; ratio of the fastest runs {best:.2f}")
            else:
                print(f"ratio xoromail / bare Typer, no bytecode cache (PYTHONDONTWRITEBYTECODE=1, editable install)"
                      f" = {ratio:.2f} (information); ratio of the fastest runs {best:.2f}")

        print("\ncostliest imports of `xoromail --help` (python -X importtime, cumulative):")
        for micros, module in import_costs(env):
            print(f"  {micros / 1000:7.1f} ms  {module}")

        print("\nheavy modules imported (run in-process, sys.modules afterwards):")
        for label, argv in (("xoromail --help", ["--help"]), ("xoromail send --help", ["send", "--help"])):
            _, modules = imported(folder, argv, env)
            bad = sorted(set(HELP_FORBIDDEN) & modules)
            ok = not bad
            results.append((f"{label} imports", ok))
            print(f"  {label}: loaded {', '.join(sorted(set(REPORTED) & modules)) or 'none of interest'}")
            print(f"    forbidden ({', '.join(HELP_FORBIDDEN)}): {', '.join(bad) or 'none'}: {verdict(ok)}")

        with sink(folder) as server:
            batch = write_csv(folder / "rows.csv", 20)
            env = environment(folder, write_config(folder / "config.toml", server.port, server.ca_file))
            before = server.count()
            code, modules = imported(folder, ["send", "--event", "overdue-invoice", "--batch", str(batch)], env)
            arrived = server.count() - before
            dry_code, dry_modules = imported(folder, ["send", "--event", "overdue-invoice", "--batch", str(batch),
                                                      "--dry-run"], env)
            dry_arrived = server.count() - before - arrived
        bad = sorted(set(SEND_FORBIDDEN) & modules)
        ok = not bad and code == 0 and arrived == 20
        results.append(("send imports", ok))
        print(f"  xoromail send --batch (SMTP, 20 messages, exit {code}, {arrived} arrived): loaded "
              f"{', '.join(sorted(set(REPORTED) & modules))}")
        print(f"    forbidden ({', '.join(SEND_FORBIDDEN)}): {', '.join(bad) or 'none'}: {verdict(ok)}")
        bad = sorted(set(DRY_RUN_FORBIDDEN) & dry_modules)
        ok = not bad and dry_code == 0 and dry_arrived == 0
        results.append(("dry-run imports", ok))
        print(f"  xoromail send --batch --dry-run (exit {dry_code}, {dry_arrived} arrived): loaded "
              f"{', '.join(sorted(set(REPORTED) & dry_modules)) or 'none of interest'}")
        print(f"    forbidden ({', '.join(DRY_RUN_FORBIDDEN)}): {', '.join(bad) or 'none'}: {verdict(ok)}")

    failed = [label for label, ok in results if not ok]
    print(f"\nstartup: {len(results) - len(failed)}/{len(results)} targets met"
          + (f"; missed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
