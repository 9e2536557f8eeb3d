"""Drive the CLI in a real pseudo-terminal, as a person at a keyboard would."""

from __future__ import annotations

import os
import pty
import select
import termios
import time
from pathlib import Path

from tests.support.cli import SCRIPT, as_from_a_terminal


class Terminal:
    def __init__(self, args: list[str], env: dict[str, str], stdout: Path | None = None) -> None:
        """`stdout`: a file the CLI's standard output goes to (`xoromail … > file` at a terminal)."""
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # pragma: no cover - the child becomes the CLI
            as_from_a_terminal()  # Ctrl-C (^C on the pty) interrupts, even when the suite runs as a background job
            if stdout is not None:
                os.dup2(os.open(stdout, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 1)
            os.execve(SCRIPT, [SCRIPT, *args], env)  # noqa: S606  # exec the CLI in the child, no shell wanted
        self.screen = b""
        self._unread = b""
        self.status: int | None = None

    def _read(self, wait: float = 0.1) -> None:
        ready, _, _ = select.select([self.fd], [], [], wait)
        if ready:
            try:
                data = os.read(self.fd, 4096)
            except OSError:
                data = b""
            self.screen += data
            self._unread += data

    def expect(self, text: str, timeout: float = 30.0) -> None:
        """Read until `text` shows (the first prompt comes after a process start: slow on a loaded machine)."""
        deadline = time.monotonic() + timeout
        while text.encode() not in self._unread:
            if time.monotonic() > deadline:
                raise AssertionError(f"never saw {text!r}; screen ends with {self.screen[-600:]!r}")
            self._read()
        self._unread = self._unread[self._unread.index(text.encode()) + len(text):]

    def answer(self, prompt: str, text: str, *, hidden: bool = False) -> None:
        """Type `text` once `prompt` shows. `hidden`: a password prompt. Rich prints its prompt first and
        then calls getpass, which switches echo off with TCSAFLUSH, discarding whatever was typed before:
        the answer is typed only once the terminal's echo is off (the CLI is then reading it)."""
        self.expect(prompt)
        if hidden:
            self._until_echo_off(prompt)
        else:
            time.sleep(0.2)  # a person reads the prompt before typing (not a sync: typed input is kept)
        os.write(self.fd, (text + "\r").encode())

    def _until_echo_off(self, prompt: str, timeout: float = 15.0) -> None:
        """Wait until the CLI has switched the terminal's echo off (the master side reads the terminal's
        settings), reading its output meanwhile."""
        deadline = time.monotonic() + timeout
        while termios.tcgetattr(self.fd)[3] & termios.ECHO:
            if time.monotonic() > deadline:
                raise AssertionError(f"echo never went off at {prompt!r}; screen ends with {self.screen[-600:]!r}")
            self._read(0.01)

    def wait(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._read()
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                while True:
                    before = len(self.screen)
                    self._read(0.05)
                    if len(self.screen) == before:
                        break
                os.close(self.fd)
                self.status = os.waitstatus_to_exitcode(status)
                return self.status
        os.kill(self.pid, 9)
        raise AssertionError(f"still running; screen ends with {self.screen[-600:]!r}")

    @property
    def text(self) -> str:
        return self.screen.decode("utf-8", "replace")
