"""Every service's own setup flags: added to `setup`'s signature from the registry (grouped by service in
--help), read back from `ctx.params` as the service's answers, and refused for a profile of another service.
A new service's `setup_options` need no change here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from xoromail_cli.cli.console import stdin_secret

SERVICE_OPTION_PREFIX = "service_option_"


def service_answers(ctx: typer.Context) -> dict[str, Any]:
    """The service flags given on the command line, by their `SetupOption.key` (0 is a value: --redirect-port 0)."""
    answers = {name.removeprefix(SERVICE_OPTION_PREFIX): value for name, value in ctx.params.items()
               if name.startswith(SERVICE_OPTION_PREFIX) and value is not None and value is not False}
    for key in [key for key in answers if key.endswith("_stdin")]:  # --client-secret-stdin and the like
        answers[key.removesuffix("_stdin")] = stdin_secret(f"--{key.replace('_', '-')}")
    return answers


def refuse_foreign_options(service_name: str, given: dict[str, Any]) -> None:
    """`--ews-url` with an SMTP profile is a mistake, not something to ignore."""
    from xoromail_cli import services
    from xoromail_cli.errors import UsageError

    own = {option.key for option in services.get(service_name).setup_options}
    flags = {option.key for name in services.REGISTRY for option in services.get(name).setup_options}
    for key in given:
        if key in flags and key not in own:
            owners = [name for name in services.REGISTRY
                      if any(o.key == key for o in services.get(name).setup_options)]
            flag = next(o.flag for o in services.get(owners[0]).setup_options if o.key == key)
            raise UsageError(f"{flag} is an option of the {', '.join(owners)} service, not of {service_name}",
                             f"pass --service {owners[0]}, or leave {flag} out")


def with_service_options(command: Callable[..., None]) -> Callable[..., None]:
    """`command` with every service's own flags added to its signature (once each, grouped by service in
    --help); the command reads them from `ctx.params`, so they are dropped before it is called."""
    import functools
    import inspect

    from xoromail_cli import services

    signature = inspect.signature(command, eval_str=True)
    types: dict[str, Any] = {"text": str, "int": int, "float": float, "path": Path, "flag": bool}
    extra: dict[str, inspect.Parameter] = {}
    for name, entry in services.REGISTRY.items():
        for option in services.get(name).setup_options:
            param = SERVICE_OPTION_PREFIX + option.key
            if param in extra:
                continue
            flag = option.kind == "flag"
            annotation = Annotated[types[option.kind] if flag else types[option.kind] | None, typer.Option(  # type: ignore[valid-type]  # built at run time from each option's kind
                option.flag, metavar=None if flag else option.metavar, help=option.help, rich_help_panel=entry.label)]
            extra[param] = inspect.Parameter(param, inspect.Parameter.KEYWORD_ONLY, default=False if flag else None,
                                             annotation=annotation)

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        # Typer converts a value (a path to `Path`) after Click has stored it in ctx.params: the command reads
        # ctx.params, so it gets the converted values
        for name in contexts:
            kwargs[name].params.update({key: kwargs[key] for key in extra if key in kwargs})
        command(**{key: value for key, value in kwargs.items() if key not in extra})

    parameters = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in signature.parameters.values()]
    contexts = [p.name for p in parameters if p.annotation is typer.Context]
    wrapper.__signature__ = signature.replace(parameters=[*parameters, *extra.values()])  # type: ignore[attr-defined]  # read by Typer through inspect.signature
    wrapper.__annotations__ = {p.name: p.annotation for p in (*parameters, *extra.values())}
    return wrapper
