from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from xoromail_cli.errors import ExitCode, TemporaryError
from xoromail_cli.ledger.locking import ProfileLock


def test_second_holder_is_refused_naming_the_first(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "default.lock"
    with ProfileLock(path):
        code = ("import sys\nfrom pathlib import Path\nfrom xoromail_cli.ledger.locking import ProfileLock\n"
                "from xoromail_cli.errors import TemporaryError\n"
                f"try:\n    ProfileLock(Path({str(path)!r}), wait=0.2).acquire()\n"
                "except TemporaryError as e:\n    print(e.message); sys.exit(e.exit_code)\n")
        other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert other.returncode == ExitCode.TEMPFAIL
    assert f"process {os.getpid()}" in other.stdout


def test_the_lock_is_free_again_after_release(tmp_path: Path) -> None:
    path = tmp_path / "default.lock"
    with ProfileLock(path):
        pass
    with ProfileLock(path, wait=0):
        assert path.read_text().strip() == str(os.getpid())


def test_same_process_second_lock_object_also_waits_then_fails(tmp_path: Path) -> None:
    path = tmp_path / "default.lock"
    with ProfileLock(path), pytest.raises(TemporaryError, match="another xoromail run") as caught:
        ProfileLock(path, wait=0.05).acquire()
    assert "--wait SECONDS" in (caught.value.hint or "")


def test_a_lock_folder_that_is_a_file_is_a_config_error(tmp_path: Path) -> None:
    from xoromail_cli.errors import ConfigError

    (tmp_path / "locks").write_text("not a folder")
    with pytest.raises(ConfigError, match="cannot create the lock file"):
        ProfileLock(tmp_path / "locks" / "default.lock").acquire()
