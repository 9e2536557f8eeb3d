"""Reading one password from a real Secret Service in a fresh process: the backend setup recorded in the profile
(`keyring_backend`, loaded by name) against keyring left to choose (its scan of every installed backend) and the
backend named in PYTHON_KEYRING_BACKEND. It starts its own `dbus-run-session` with gnome-keyring-daemon.

Printed, not judged: the recorded backend should cost what the named one costs, the scan ~70 ms more (it depends
on the backends installed).

Run: .venv/bin/python benchmarks/recorded_backend.py  [--runs 15]
Needs dbus-run-session and gnome-keyring-daemon (apt-get install gnome-keyring dbus).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import PYTHON, median, print_table

SECRET_SERVICE = "keyring.backends.SecretService.Keyring"  # noqa: S105  # a class path, not a password
READ = ("import sys; from xoromail_cli import credentials\n"
        "assert credentials.read_secret('default', 'password', sys.argv[1] or None) == 'bench'\n"
        "print(int('keyring.backends.chainer' in sys.modules))")


def timed(env: dict[str, str], recorded: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([PYTHON, "-c", READ, recorded], env=env, capture_output=True, text=True, check=True,
                          timeout=60)
    return time.perf_counter() - started, done.stdout.strip()


def in_session(runs: int) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("XOROMAIL_", "PYTHON_KEYRING"))}
    daemon = subprocess.Popen(["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    assert daemon.stdin is not None
    daemon.stdin.write("benchmark keyring password")
    daemon.stdin.close()
    try:
        store = "from xoromail_cli import credentials; credentials.write_secret('default', 'password', 'bench')"
        for _ in range(100):  # until the daemon is on the bus
            if subprocess.run([PYTHON, "-c", store], env=env, capture_output=True, check=False).returncode == 0:
                break
            time.sleep(0.1)
        cases = {"recorded backend (keyring_backend)": (env, SECRET_SERVICE),
                 "named backend ($PYTHON_KEYRING_BACKEND)": ({**env, "PYTHON_KEYRING_BACKEND": SECRET_SERVICE}, ""),
                 "keyring's scan (no record)": (env, "")}
        times: dict[str, list[float]] = {name: [] for name in cases}
        scanned: dict[str, str] = {}
        for _ in range(runs):  # alternated, so a busy moment hits every case alike
            for name, (case_env, recorded) in cases.items():
                seconds, scanned[name] = timed(case_env, recorded)
                times[name].append(seconds)
    finally:
        daemon.terminate()
        daemon.wait(10)
    base = median(times["named backend ($PYTHON_KEYRING_BACKEND)"])
    print(f"load average {os.getloadavg()[0]:.1f}")
    print_table([["case", "median ms", "ratio to named backend", "chainer imported"],
                 *[[name, f"{median(values) * 1000:.0f}", f"{median(values) / base:.2f}", scanned[name]]
                   for name, values in times.items()]])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--in-session", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.in_session:
        in_session(args.runs)
        return 0
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        runtime = home / "runtime"
        runtime.mkdir(mode=0o700)
        env = {key: value for key, value in os.environ.items() if key != "DBUS_SESSION_BUS_ADDRESS"}
        env.update(HOME=str(home), XDG_RUNTIME_DIR=str(runtime), XDG_DATA_HOME=str(home / "data"),
                   XDG_CONFIG_HOME=str(home / "config"), XDG_STATE_HOME=str(home / "state"))
        return subprocess.run(["dbus-run-session", "--", PYTHON, __file__, "--in-session", "--runs", str(args.runs)],
                              env=env, check=False, timeout=1200).returncode


if __name__ == "__main__":
    sys.exit(main())
