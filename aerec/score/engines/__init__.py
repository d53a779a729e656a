"""The scoring engines, by --engine name: each module declares its own click options and
builds its engine from them. Only the CLIs import this registry; the pipeline receives an
engine instance (aerec.score.job.Engine).

A new engine is one module here (a class with `parts_only`, `check`, `parts_for`, `score`, its
OPTIONS and `from_options`) and one line in ENGINES.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import ModuleType
from typing import Any

import click

from aerec.score.engines import local, ray

ENGINES: dict[str, ModuleType] = {"local": local, "ray": ray}


def _option_names(module: ModuleType) -> list[str]:
    """The parameter names of an engine module's click options."""

    def probe() -> None: ...

    for option in module.OPTIONS:
        option(probe)
    return [param.name for param in getattr(probe, "__click_params__", []) if param.name]


def engine_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--engine and every engine's own options; the command receives `engine`, the chosen
    engine built from its options (another engine's option given is a usage error)."""
    names = {name: _option_names(module) for name, module in ENGINES.items()}

    @functools.wraps(command)
    def with_engine(**kwargs: Any) -> Any:
        chosen = kwargs.pop("engine")
        settings = {name: {o: kwargs.pop(o) for o in options} for name, options in names.items()}
        context = click.get_current_context()
        for name, options in names.items():
            given = [o for o in options if name != chosen and _given(context, o)]
            if given:
                flag = "--" + given[0].replace("_", "-")
                raise click.UsageError(f"{flag} applies only to --engine {name}")
        return command(engine=ENGINES[chosen].from_options(**settings[chosen]), **kwargs)

    for module in reversed(list(ENGINES.values())):
        for option in reversed(module.OPTIONS):
            with_engine = option(with_engine)
    return click.option(
        "--engine",
        default="local",
        show_default=True,
        type=click.Choice(list(ENGINES)),
        help="local: this process; ray: a Ray cluster (needs aerec[ray]).",
    )(with_engine)


def _given(context: click.Context, name: str) -> bool:
    return context.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE
