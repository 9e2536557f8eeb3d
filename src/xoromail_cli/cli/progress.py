"""Validation's stages while they run: nobody should stare at a silent screen for up to 30 seconds.

In a terminal a live list under "Checking profile '…' …": each finished stage with its mark and time, a
spinner on the running one; it gives way to the report's table when the check ends. Off a terminal (cron,
a pipe, `--trace`) the same news as plain lines on stderr, so stdout keeps only the report.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.live import Live

    from xoromail_cli.validate import Stage


class StageProgress:
    """A `validate.StageCallback` that shows the stages; use it as a context manager around the check."""

    def __init__(self, profile: str, *, live: bool = True) -> None:
        from xoromail_cli.cli.console import err, out

        self.title = f"Checking profile {profile!r} …"
        self._live_wanted = live and out().is_terminal
        self._console = out() if self._live_wanted else err()
        self._done: list[Stage] = []
        self._running: str | None = None
        self._live: Live | None = None

    def __enter__(self) -> StageProgress:
        if not self._live_wanted:
            self._console.print(self.title, markup=False)
            return self
        from rich.live import Live

        self._live = Live(self._render(), console=self._console, transient=True, refresh_per_second=10)
        self._live.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def __call__(self, name: str, outcome: Stage | None) -> None:
        if outcome is None:
            self._running = name
            if self._live is None:
                self._console.print(f"  {name} …", markup=False)
        else:
            self._done.append(outcome)
            self._running = None if self._running == name else self._running
            if self._live is None:
                self._console.print(f"  {name}: {'ok' if outcome.ok else 'FAILED'} ({outcome.seconds:.1f} s)",
                                    markup=False)
        if self._live is not None:
            self._live.update(self._render())

    def _render(self) -> RenderableType:
        from rich.console import Group
        from rich.padding import Padding
        from rich.spinner import Spinner
        from rich.text import Text

        lines: list[RenderableType] = [Text(self.title, style="bold")]
        for stage in self._done:
            mark = Text("  ✓ ", style="green") if stage.ok else Text("  ✗ ", style="bold red")
            lines.append(mark + Text(f"{stage.name}  ({stage.seconds:.1f} s)"))
        if self._running is not None:
            lines.append(Padding(Spinner("dots", text=Text(f" {self._running} …"), style="cyan"), (0, 0, 0, 2)))
        return Group(*lines)
