"""External clients some tests drive as an administrator would (swaks): required in CI, named elsewhere.

The README's test command must pass on a machine with nothing but Python. A test that drives an external
command finds it here: in CI (`CI` set; `.ci/run` installs the command) a missing one fails the test; on any
other machine the test says what to install (a warning in pytest's summary) and makes the same check with
Python's own client, so it still proves what it is about.
"""

from __future__ import annotations

import os
import shutil
import warnings


class MissingClientWarning(UserWarning):
    """An external client is not installed: the test ran its check with Python's client instead."""


def external_client(name: str, install: str,
                    instead: str = "made its check with Python's own client") -> str | None:
    """The command's path; None (with a warning naming `install`, and what the test did `instead`) outside CI
    when it is not installed."""
    found = shutil.which(name)
    if found is not None:
        return found
    if os.environ.get("CI"):
        raise AssertionError(f"{name} is missing: .ci/run installs it ({install})")
    warnings.warn(f"{name} is not installed, so this test {instead}; `{install}` to run it with {name}, as CI "
                  "does", MissingClientWarning, stacklevel=2)
    return None


def private_namespaces(instead: str) -> bool:
    """Whether `unshare --user --map-root-user --mount --net` works here (some systems forbid unprivileged user
    namespaces, e.g. by an AppArmor default). In CI it must; elsewhere a warning says why the test did not run."""
    import subprocess

    if external_client("unshare", "apt-get install util-linux", instead=instead) is None or \
            external_client("ip", "apt-get install iproute2", instead=instead) is None:
        return False
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "--net", "true"],
                           capture_output=True, text=True, timeout=30, check=False)
    if probe.returncode == 0:
        return True
    reason = probe.stderr.strip() or f"exit {probe.returncode}"
    if os.environ.get("CI"):
        raise AssertionError(f"unprivileged user namespaces are not available here ({reason}): CI needs them")
    warnings.warn(f"unprivileged user namespaces are not available ({reason}), so this test {instead}",
                  MissingClientWarning, stacklevel=2)
    return False
