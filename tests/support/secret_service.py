"""Steps run in a real Secret Service: `secret_service_session.py` (gnome-keyring-daemon unlocked with a known
password) inside `dbus-run-session`, with no PYTHON_KEYRING_BACKEND, so keyring finds the Secret Service by itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.external import external_client

SESSION = str(Path(__file__).with_name("secret_service_session.py"))
KEYRING_PASSWORD = "known login keyring password"


def secret_service_here(instead: str) -> bool:
    """Whether dbus-run-session and gnome-keyring-daemon are installed (required in CI; `instead`: what the test
    checks where they are not)."""
    session = external_client("dbus-run-session", "apt-get install gnome-keyring dbus", instead)
    daemon = external_client("gnome-keyring-daemon", "apt-get install gnome-keyring dbus", instead)
    return session is not None and daemon is not None


def in_secret_service_session(steps: list[Any], tmp_path: Path) -> list[dict[str, Any]]:
    """Run `steps` (see secret_service_session.py) in one session; each step's code, stdout and stderr."""
    spec = tmp_path / "steps.json"
    spec.write_text(json.dumps({"password": KEYRING_PASSWORD, "steps": steps}))
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}
    env.pop("PYTHON_KEYRING_BACKEND")
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    done = subprocess.run(["dbus-run-session", "--", sys.executable, SESSION, str(spec)], env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    spec.unlink()  # it held the password to type
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))
