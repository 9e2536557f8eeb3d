"""Reading one stored password in a fresh process: the encrypted file (its key given, keyring never imported)
against the keyring with a backend named in PYTHON_KEYRING_BACKEND (no scan) and keyring left to choose (its
entry-point scan, as a send with a desktop keyring pays it).

Target: the encrypted file's median <= the named keyring backend's median * 1.2 (it adds `cryptography`'s
import, saves keyring's). The scan's cost is printed, not judged (it depends on the backends installed).

Run: .venv/bin/python benchmarks/secret_store.py  [--runs 15]
Exits non-zero if the target is missed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

from _common import PYTHON, median, print_table, verdict

READ = ("import sys; from xoromail_cli import credentials, errors\n"
        "try:\n    credentials.read_secret('default', 'password')\n"
        "except errors.KeyringUnavailableError:\n    pass\n"
        "print('keyring' in sys.modules)")
TARGET = 1.2


def environment(home: Path, **extra: str) -> dict[str, str]:
    base = {key: value for key, value in os.environ.items()
            if not key.startswith(("XOROMAIL_", "PYTHON_KEYRING", "DBUS_")) and key != "CREDENTIALS_DIRECTORY"}
    base.update(HOME=str(home), XDG_STATE_HOME=str(home / "state"), XDG_DATA_HOME=str(home / "data"),
                XDG_CONFIG_HOME=str(home / "config"))
    base.update(extra)
    return base


def timed(env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([PYTHON, "-c", READ], env=env, capture_output=True, text=True, check=True, timeout=60)
    return time.perf_counter() - started, done.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        key = home / "secrets.key"
        subprocess.run([PYTHON, "-m", "xoromail_cli", "secrets", "init-key", str(key)], check=True,
                       capture_output=True, timeout=60)
        cases = {
            "encrypted file": environment(home, XOROMAIL_SECRETS_KEY=str(key)),
            "keyring, backend named": environment(home, PYTHON_KEYRING_BACKEND="keyrings.alt.file.PlaintextKeyring"),
            "keyring, backend scanned": environment(home),
        }
        store = subprocess.run([PYTHON, "-c", "from xoromail_cli import credentials; "
                                "credentials.write_secret('default', 'password', 'bench')"],
                               env=cases["encrypted file"], check=True, timeout=60)
        assert store.returncode == 0
        times: dict[str, list[float]] = {name: [] for name in cases}
        imported: dict[str, str] = {}
        for _ in range(runs):  # alternated, so a busy moment hits every case alike
            for name, env in cases.items():
                seconds, keyring_loaded = timed(env)
                times[name].append(seconds)
                imported[name] = keyring_loaded
    medians = {name: median(values) for name, values in times.items()}
    base = medians["keyring, backend named"]
    print_table([["case", "median ms", "ratio to named backend", "keyring imported"],
                 *[[name, f"{value * 1000:.0f}", f"{value / base:.2f}", imported[name]]
                   for name, value in medians.items()]])
    ok = medians["encrypted file"] <= base * TARGET and imported["encrypted file"] == "False"
    print(f"encrypted file / named keyring backend <= {TARGET}, keyring not imported: {verdict(ok)}")
    return 0 if ok else 1

if __name__ == "__main__":
    raise SystemExit(main())
