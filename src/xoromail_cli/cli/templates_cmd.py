"""`xoromail templates list|show|export`: the event catalogue and the wording users can change."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xoromail_cli.cli.completion import event_names
from xoromail_cli.cli.state import state_of

templates_app = typer.Typer(help="The event emails: list, show and export their templates.", no_args_is_help=True,
                            context_settings={"help_option_names": ["-h", "--help"]})


def _templates_dir(ctx: typer.Context) -> Path:
    from xoromail_cli import config
    from xoromail_cli.compose.render import templates_dir_of

    state = state_of(ctx)
    profile = config.load(state.config_path).profiles.get(state.profile_name)
    return templates_dir_of(profile)


@templates_app.command("list")
def list_events(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """List the events, what each is for, and their variables."""
    from rich.markup import escape
    from rich.table import Table

    from xoromail_cli.cli.console import out, print_json
    from xoromail_cli.compose.events import EVENTS

    if as_json:
        print_json([{"event": e.name, "erp_name": e.erp_name, "purpose": e.purpose, "required": list(e.required),
                     "optional": list(e.optional), "key": list(e.natural_key),
                     "needs_attachment": e.needs_attachment} for e in EVENTS.values()])
        return
    console = out()
    for e in EVENTS.values():
        # One block per event, a line per fact: a narrow terminal wraps between names, never inside one.
        attachment = "required (at least one file)" if e.needs_attachment else "optional (--attach)"
        console.print(f"[bold]{escape(e.name)}[/] — {escape(e.erp_name)}")
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True, style="dim")
        grid.add_column()
        for label, value in (("purpose", e.purpose), ("required", ", ".join(e.required)),
                             ("optional", ", ".join(e.optional) or "—"),
                             ("unique by", ", ".join(e.natural_key) + " + recipients"), ("attachment", attachment)):
            grid.add_row(f"  {label}:", escape(value))
        console.print(grid)
        console.print()


@templates_app.command("show")
def show(
    ctx: typer.Context,
    event: Annotated[str, typer.Argument(metavar="EVENT", autocompletion=event_names,
                                         help="An event name from `templates list`.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Show an event's variables and its templates (your override where one exists)."""
    from xoromail_cli import config
    from xoromail_cli.cli.console import out, print_json
    from xoromail_cli.compose.events import get_event
    from xoromail_cli.compose.render import Renderer
    from xoromail_cli.profile import Profile

    spec = get_event(event)
    state = state_of(ctx)
    profile = config.load(state.config_path).profiles.get(state.profile_name) or Profile(
        name="preview", email="sender@example.com", settings=None)
    files = Renderer(profile, _templates_dir(ctx)).template_files(spec)
    data = {"event": spec.name, "erp_name": spec.erp_name, "purpose": spec.purpose,
            "required": list(spec.required), "optional": list(spec.optional), "key": list(spec.natural_key),
            "needs_attachment": spec.needs_attachment,
            "templates": {f.name: {"path": str(f.path), "custom": f.custom, "source": f.source} for f in files}}
    if as_json:
        print_json(data)
        return
    from rich.markup import escape

    console = out()
    console.print(f"[bold]{spec.name}[/] — {escape(spec.erp_name)}: {escape(spec.purpose)}")
    attachment = " (+ at least one attachment)" if spec.needs_attachment else ""
    console.print(f"required: {', '.join(spec.required)}{attachment}")
    console.print(f"optional: {', '.join(spec.optional) or '—'}")
    console.print(f"unique by: {', '.join(spec.natural_key)} + recipients")
    for file in files:
        origin = "your template" if file.custom else "built-in"
        console.print(f"\n[bold]{file.name}[/] [dim]({origin}: {escape(str(file.path))})[/]")
        console.print(escape(file.source.rstrip("\n")), soft_wrap=True)


@templates_app.command("export")
def export(
    ctx: typer.Context,
    folder: Annotated[Path | None, typer.Argument(metavar="DIR",
                                                  help="Where to write them (default: the templates folder).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that already exist.")] = False,
) -> None:
    """Write the built-in templates to a folder as a starting point for your own wording."""
    import json

    from xoromail_cli.cli.console import out
    from xoromail_cli.compose.export import export_templates

    target = (folder or _templates_dir(ctx)).expanduser().resolve()  # the setting works from any folder
    written, kept = export_templates(target, force=force)
    out().print(f"Wrote {len(written)} file(s) to {target}" + (f"; kept {len(kept)} existing (use --force)"
                                                                  if kept else ""), soft_wrap=True)
    if folder is not None:
        out().print(f"Use them with `templates_dir = {json.dumps(str(target))}` in the profile.", soft_wrap=True)
