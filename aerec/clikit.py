"""What every CLI shares: logging set-up, progress bars, and exit codes for errors."""

from __future__ import annotations

import functools
import logging
import signal
import sys
from collections.abc import Callable, Iterable
from dataclasses import fields
from typing import Any, NoReturn, TypeVar

import click
from click.core import ParameterSource
from tqdm import tqdm

from aerec.contracts import (
    DEFAULT_PARTS,
    DEVICES,
    EXIT_BAD_INPUT,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    MAX_BATCH_SIZE,
    MAX_CHURN,
    MAX_ITEM_SHARE,
    MAX_PARTS,
    MAX_UNKNOWN_SHARE,
    MIN_COVERAGE_RATIO,
    MIN_POPULARITY_AGREEMENT,
    MIN_ROWS_FRACTION,
)
from aerec.data.layouts import layouts_help
from aerec.errors import AerecError, Terminated
from aerec.logs import LOG_FORMATS, formatter, is_json

T = TypeVar("T")
log = logging.getLogger("aerec")


device_option = click.option(
    "--device",
    default="auto",
    show_default=True,
    type=click.Choice(DEVICES),
    help="auto: CUDA when usable, else CPU.",
)
ratings_option = click.option(
    "--ratings",
    required=True,
    type=click.Path(),
    help=f"Ratings file, its layout detected: {layouts_help()}.",
)
scored_ratings_option = click.option(
    "--ratings",
    required=True,
    type=click.Path(),
    help=f"Ratings file, its layout detected: {layouts_help()}; or a directory of Parquet "
    "parts (--engine ray converts a text file to Parquet in the run's directory first).",
)
model_option = click.option(
    "--model",
    required=True,
    type=click.Path(dir_okay=False),
    help="ONNX scoring model written by export-onnx.",
)


def _share_option(flag: str, default: float, help: str) -> Callable[[Any], Any]:
    """A gate's threshold: a share between 0 and 1."""
    return click.option(
        flag, default=default, show_default=True, type=click.FloatRange(0.0, 1.0), help=help
    )


min_agreement_option = click.option(
    "--min-popularity-agreement",
    "min_agreement",
    default=MIN_POPULARITY_AGREEMENT,
    show_default=True,
    type=click.FloatRange(-1.0, 1.0),
    help="Refuse ratings whose item popularity ranks unlike the model's training data's "
    "(Spearman over the items both rated below this; -1 turns the check off).",
)
_GATE_OPTIONS = (
    _share_option(
        "--max-unknown",
        MAX_UNKNOWN_SHARE,
        "Refuse to publish when more ratings, or users, than this share are of items the "
        "model does not know.",
    ),
    min_agreement_option,
    _share_option(
        "--min-rows-fraction",
        MIN_ROWS_FRACTION,
        "Refuse to publish a table with fewer rows than this share of the published one.",
    ),
    _share_option(
        "--max-item-share",
        MAX_ITEM_SHARE,
        "Refuse a table whose most frequent item is in more than this share of the lists "
        "(1 turns the check off).",
    ),
    _share_option(
        "--min-coverage-ratio",
        MIN_COVERAGE_RATIO,
        "Refuse a table whose catalogue coverage is below this share of the published "
        "table's (0 turns the check off).",
    ),
    _share_option(
        "--max-churn",
        MAX_CHURN,
        "With the published table's model and k, refuse a table in which more than this "
        "share of the users' lists changed (1 turns the check off).",
    ),
)


def gates_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Every publish and health gate's option; the command receives them as `gates`."""

    @functools.wraps(command)
    def with_gates(**kwargs: Any) -> Any:
        from aerec.score.job import Gates  # here: the training CLIs need no ONNX Runtime

        gates = Gates(**{field.name: kwargs.pop(field.name) for field in fields(Gates)})
        return command(gates=gates, **kwargs)

    for option in reversed(_GATE_OPTIONS):
        with_gates = option(with_gates)
    return with_gates


batch_size_option = click.option(
    "--batch-size",
    default=None,
    type=click.IntRange(1, MAX_BATCH_SIZE),
    help="Users scored together (memory grows with it). Default: 512 on the CPU; on CUDA "
    "as many as fit a 4 GiB budget (2,444 users at 59,047 items).",
)
fallback_option = click.option(
    "--no-fallback",
    "no_fallback",
    is_flag=True,
    help="Give users without a rating of an item the model knows no rows, instead of the "
    "model's most rated items (source 'popularity').",
)
metrics_file_option = click.option(
    "--metrics-file",
    type=click.Path(dir_okay=False),
    help="Write this attempt's metrics here for Prometheus (node_exporter's textfile "
    "collector: a *.prom file in its directory), replaced atomically.",
)


def logging_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """-v and --log-format (also $AEREC_LOG_FORMAT); logging is set up before the command
    runs. A subcommand given neither keeps what its group set up."""

    @functools.wraps(command)
    def with_logging(**kwargs: Any) -> Any:
        verbose, log_format = kwargs.pop("verbose"), kwargs.pop("log_format")
        context = click.get_current_context()
        chosen = context.get_parameter_source("log_format") != ParameterSource.DEFAULT
        if verbose or chosen or not context.meta.get("aerec.logging"):
            setup_logging(verbose, log_format)
            context.meta["aerec.logging"] = True
        return command(**kwargs)

    with_logging = click.option(
        "--log-format",
        type=click.Choice(LOG_FORMATS),
        default="text",
        show_default=True,
        envvar="AEREC_LOG_FORMAT",
        help="json: one JSON object a line (time, level, stage, run, logger, message), for "
        "journald and log shippers.",
    )(with_logging)
    return click.option("-v", "--verbose", is_flag=True, help="Debug logging.")(with_logging)


parts_option = click.option(
    "--parts",
    type=click.IntRange(1, MAX_PARTS),
    help="Write a partitioned table of N parts by user (score-all default "
    f"{DEFAULT_PARTS}; --engine ray: one part per million ratings, at least that).",
)


def setup_logging(verbose: bool = False, log_format: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    level = logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for noisy in ("onnxscript", "onnx_ir", "torch", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def progress(
    items: Iterable[T],
    description: str,
    total: int | None = None,
    unit: str = "batch",
    per_item: int = 1,
) -> Iterable[T]:
    """A progress bar on an interactive terminal; the plain iterable otherwise.

    per_item counts each item as that many units (a batch of users as its users).
    """
    return tqdm(
        items,
        desc=description,
        total=total,
        unit=unit,
        unit_scale=per_item,
        leave=False,
        disable=None,
        file=sys.stderr,
    )


MAX_ERROR_CHARS = 300  # an error line quotes at most this much of what it is about


def one_line(text: object) -> str:
    """A message as one line of bounded length (a bad field may be megabytes long)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= MAX_ERROR_CHARS else flat[: MAX_ERROR_CHARS - 1] + "…"


def _terminate(signum: int, frame: object) -> None:
    raise Terminated("terminated (SIGTERM); temporary files removed, nothing published")


def run(command: click.Command) -> NoReturn:
    """Run a click command, turning errors into one stderr line and a documented exit code.

    SIGTERM is raised as an error in the main thread, so the clean-up of temporary files
    runs as for any other failure.
    """
    name = command.name or "aerec"
    signal.signal(signal.SIGTERM, _terminate)

    def fail(message: str, code: int) -> NoReturn:
        if is_json():
            log.error("%s: %s", name, one_line(message))
        else:
            click.echo(f"{name}: {one_line(message)}", err=True)
        sys.exit(code)

    try:
        code = command.main(standalone_mode=False)  # a click Exit(code) comes back as its code
        sys.exit(code if isinstance(code, int) else EXIT_OK)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.exceptions.Abort:
        fail("aborted", EXIT_INTERNAL)
    except click.ClickException as error:
        fail(f"error: {error.format_message()}", EXIT_BAD_INPUT)
    except (AerecError, Terminated) as error:
        fail(f"error: {error}", error.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", EXIT_INTERRUPTED)
    except OSError as error:  # the system refused: a full disk, a permission
        log.debug("system error", exc_info=True)
        fail(f"error: {error}", EXIT_INTERNAL)
    except Exception as error:  # an internal error: one line, the traceback in the log
        log.debug("internal error", exc_info=True)
        fail(f"internal error: {type(error).__name__}: {error}", EXIT_INTERNAL)
