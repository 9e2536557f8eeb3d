"""`xoromail demo` and `xoromail sink`: trying xoromail (and an ERP) with no real account."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from xoromail_cli.local.sink import Received


SINK_PORT = 1025
"""The sink's port: the relay listens on 2525, so a test setup can run the relay in front of the sink."""

def demo(
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Try xoromail with no account and no network: a local server, a profile, a validation."""
    import tempfile

    from xoromail_cli.cli.console import out, print_json
    from xoromail_cli.cli.render import print_validation
    from xoromail_cli.local import demo as demonstration

    console = out()
    with tempfile.TemporaryDirectory(prefix="xoromail-demo-") as folder:
        if as_json:
            result = demonstration.run(Path(folder))
        else:
            from xoromail_cli.cli.progress import StageProgress

            console.print("[bold]xoromail demo[/]: starting a local mail server (STARTTLS + AUTH, throwaway "
                          "certificate) on 127.0.0.1; your own settings and secret store are not touched.\n")
            with StageProgress(demonstration.DEMO_PROFILE) as shown:
                result = demonstration.run(Path(folder), on_stage=shown)
    if as_json:
        print_json(result.to_json())
        raise typer.Exit(int(result.exit_code))
    print_validation(result.report)
    console.print(f"\nThe server received {len(result.received)} message(s):")
    for received in result.received:
        console.print(f"  • {_summary(received)}", soft_wrap=True)
    for failed in (r for r in result.events if r.status != "sent"):
        console.print(f"[red]{failed.event}: {failed.status}: {failed.reply}[/]", soft_wrap=True)
    if result.ok:
        console.print("\n[green]Demo finished.[/] Next: `xoromail setup` for your real account, "
                      "`xoromail templates list` for the events.")
    raise typer.Exit(int(result.exit_code))


def sink(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help=(
        "Port to listen on (not the relay's 2525, so both can run side by side).")
    )] = SINK_PORT,
    maildir: Annotated[Path | None, typer.Option(metavar="DIR", help="Also store messages in this Maildir.")] = None,
) -> None:
    """Run a local capturing SMTP server (no TLS, no auth) for trying xoromail and an ERP."""
    import threading

    from xoromail_cli.cli.console import out
    from xoromail_cli.local.sink import CaptureHandler, SinkServer

    console = out()

    def show(received: Received) -> None:
        console.print(_summary(received), soft_wrap=True)

    server = SinkServer(host, port, handler=CaptureHandler(maildir=maildir, on_message=show))
    with server:
        console.print(f"Listening on {host}:{server.port}"
                      + (f", storing in {maildir}" if maildir else "") + " — Ctrl-C to stop", soft_wrap=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            console.print(f"Stopped after {len(server.messages)} message(s).")


def _summary(received: Received) -> str:
    message = received.parsed()
    return (f"from {received.sender} to {', '.join(received.recipients)}: "
            f"{message.get('Subject', '(no subject)')} ({len(received.data)} bytes)")
