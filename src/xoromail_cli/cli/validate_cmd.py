"""`xoromail validate`: run the staged checks and render the report as a table or JSON."""

from __future__ import annotations

from typing import Annotated

import typer

from xoromail_cli.cli.state import state_of


def validate(
    ctx: typer.Context,
    to: Annotated[str | None, typer.Option("--to", metavar="ADDR",
                                           help="Send the test message here (default: the account itself).")] = None,
    no_send: Annotated[bool, typer.Option("--no-send", help="Check everything up to sign-in; send nothing.")] = False,
    timeout: Annotated[float | None, typer.Option(
        "--timeout", metavar="SECONDS", min=0.1, max=3600.0,
        help="Network timeout per step (default: the profile's, 30).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object for scripts.")] = False,
    trace: Annotated[bool, typer.Option(
        "--trace", help="Print each stage's protocol exchange on stderr (secrets redacted).")] = False,
) -> None:
    """Check the saved profile stage by stage and send a test message."""
    from xoromail_cli import config, credentials
    from xoromail_cli import validate as validation
    from xoromail_cli.cli.console import print_json
    from xoromail_cli.cli.render import print_validation, report_json

    state = state_of(ctx)
    profile = config.load_profile(state.config_path, state.profile_name)
    if as_json:
        report = validation.run(profile, credentials.Secrets(profile), to=to, send=not no_send, timeout=timeout,
                                trace=_print_trace if trace else None)
    else:
        from xoromail_cli.cli.progress import StageProgress

        with StageProgress(profile.name, live=not trace) as shown:
            report = validation.run(profile, credentials.Secrets(profile), to=to, send=not no_send,
                                    timeout=timeout, trace=_print_trace if trace else None, on_stage=shown)
    if as_json:
        print_json(report_json(report))
    else:
        print_validation(report)
    raise typer.Exit(int(report.exit_code))


def _print_trace(direction: str, text: str) -> None:
    """One line of the protocol exchange on stderr (the transport has already redacted secrets)."""
    import sys

    from xoromail_cli.cli.console import safe_text

    for line in text.splitlines() or [""]:
        sys.stderr.write(f"{direction} {safe_text(line)}\n")
    sys.stderr.flush()
