"""One error tree: every failure a user can cause carries its exit code and a hint.

The CLI turns an `XoromailError` into one line of cause, one line of hint and the exit code, in one
place; core modules only raise. Exit codes follow sysexits.h, as msmtp does.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1
    USAGE = 2
    DATAERR = 65
    NOINPUT = 66
    UNAVAILABLE = 69
    SOFTWARE = 70
    """An unexpected error (a bug) stopped a batch: reported with the rows not sent, never a traceback."""
    CANTCREAT = 73
    TEMPFAIL = 75
    PROTOCOL = 76
    NOPERM = 77
    CONFIG = 78
    INTERRUPTED = 130
    """128 + SIGINT: stopped with Ctrl-C."""
    TERMINATED = 143
    """128 + SIGTERM: stopped by `kill`, systemd or a scheduler's time limit."""


class XoromailError(Exception):
    """Base of every error the CLI reports without a traceback."""

    exit_code: ExitCode = ExitCode.FAILURE

    def __init__(self, message: str, hint: str | None = None, *, exit_code: ExitCode | None = None,
                 field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.field = field
        """The setting or input the error is about, when there is one (config errors point at its line)."""
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(XoromailError):
    exit_code = ExitCode.USAGE


class DataError(XoromailError):
    exit_code = ExitCode.DATAERR


class NoInputError(XoromailError):
    exit_code = ExitCode.NOINPUT


class UnavailableError(XoromailError):
    exit_code = ExitCode.UNAVAILABLE


class CannotWriteError(XoromailError):
    """An output file or folder (outbox, exported templates) cannot be written."""

    exit_code = ExitCode.CANTCREAT


class TemporaryError(XoromailError):
    exit_code = ExitCode.TEMPFAIL


class AuthError(XoromailError):
    exit_code = ExitCode.NOPERM


class ConfigError(XoromailError):
    exit_code = ExitCode.CONFIG


class KeyringUnavailableError(ConfigError):
    """No usable secret store (the OS keyring, or the encrypted file): we refuse to keep the secret elsewhere."""


class SecretsFileError(KeyringUnavailableError):
    """The encrypted secrets file or its key cannot be used (missing, shared, wrong key, unwritable)."""


class SecretsOwnedElsewhereError(ConfigError):
    """The secret store's entries for a profile (or relay login) belong to another settings file that still has
    it: this file may not overwrite or remove them (stores/owners.py)."""

    def __init__(self, message: str, hint: str, *, owner: str) -> None:
        super().__init__(message, hint)
        self.owner = owner
        """The settings file the secrets belong to (its resolved path)."""


class StageFailedError(XoromailError):
    """A validation or sending stage failed; carries the stage name for reports."""

    def __init__(self, stage: str, message: str, hint: str | None, exit_code: ExitCode) -> None:
        super().__init__(message, hint, exit_code=exit_code)
        self.stage = stage
