"""Run inside `dbus-run-session`: start gnome-keyring-daemon unlocked with a known password, run the given
commands one after another in that session (no PYTHON_KEYRING_BACKEND: keyring finds the Secret Service by
itself), print their results as JSON, and stop the daemon.

    dbus-run-session -- python tests/support/secret_service_session.py STEPS.json

STEPS.json: {"password": "...", "steps": [[argv...], ...]}; stdin of a step is given as {"argv": [...], "input": "..."}.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

READY_WITHIN = 20.0


def secrets_bus_name_owned() -> bool:
    """Whether the Secret Service is on the bus (asked without D-Bus activation, which would start another)."""
    from jeepney.bus_messages import message_bus
    from jeepney.io.blocking import open_dbus_connection

    with open_dbus_connection(bus="SESSION") as connection:
        reply = connection.send_and_get_reply(message_bus.NameHasOwner("org.freedesktop.secrets"), timeout=5)
    return bool(reply.body[0])


def start_daemon(password: str, env: dict[str, str]) -> subprocess.Popen[str]:
    daemon = subprocess.Popen(["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env=env, text=True)
    assert daemon.stdin is not None
    daemon.stdin.write(password)  # --unlock: the login keyring's password, read up to end of input
    daemon.stdin.close()
    deadline = time.monotonic() + READY_WITHIN
    while not secrets_bus_name_owned():
        if daemon.poll() is not None or time.monotonic() > deadline:
            daemon.kill()
            raise SystemExit(f"gnome-keyring-daemon did not offer the Secret Service (exit {daemon.poll()})")
        time.sleep(0.05)
    return daemon


def run(step: list[str] | dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    argv, given = (step["argv"], step.get("input")) if isinstance(step, dict) else (step, None)
    done = subprocess.run(argv, input=given, capture_output=True, text=True, env=env, timeout=120, check=False)
    return {"argv": argv, "code": done.returncode, "stdout": done.stdout, "stderr": done.stderr}


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    env = {key: value for key, value in os.environ.items() if key != "PYTHON_KEYRING_BACKEND"}
    daemon = start_daemon(spec["password"], env)
    try:
        results = [run(step, env) for step in spec["steps"]]
    finally:
        daemon.terminate()
        try:
            daemon.wait(10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait(10)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
