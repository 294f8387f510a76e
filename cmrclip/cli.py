"""The ``cmrclip`` command: one subcommand per job. Heavy imports happen inside the commands."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from cmrclip import __version__
from cmrclip.errors import CmrclipError
from cmrclip.progress import ProgressFn

__all__ = ["app"]

app = typer.Typer(
    name="cmrclip",
    help="cmrclip: cine cardiac MRI + reports -> video/text encoders -> LVEF and 39 conditions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
reports_app = typer.Typer(help="Report processing: de-identify and label radiology reports.", no_args_is_help=True)
weights_app = typer.Typer(help="Import and inspect model weights.", no_args_is_help=True)
tokenizer_app = typer.Typer(help="Train a WordPiece tokenizer on a report corpus.", no_args_is_help=True)
experiment_app = typer.Typer(help="Multi-run experiments (data efficiency).", no_args_is_help=True)
app.add_typer(reports_app, name="reports")
app.add_typer(weights_app, name="weights")
app.add_typer(tokenizer_app, name="tokenizer")
app.add_typer(experiment_app, name="experiment")

F = TypeVar("F", bound=Callable[..., Any])
logger = logging.getLogger("cmrclip.cli")

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.", exists=True)]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override a config value: --set a.b=c (repeatable).")]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Output folder or file.")]


def job(target: typer.Typer = app, name: str | None = None) -> Callable[[F], F]:
    """Register a command; a :class:`CmrclipError` becomes one line on stderr and exit code 2."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except CmrclipError as exc:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(2) from None

        target.command(name)(wrapper)
        return fn

    return decorate


@contextmanager
def progress_bar() -> Iterator[ProgressFn]:
    """Yield a progress callback drawn as rich progress bars, one per task name."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=False) as bar:
        tasks: dict[str, Any] = {}

        def update(task: str, done: int, total: int) -> None:
            if task not in tasks:
                tasks[task] = bar.add_task(task, total=total)
            bar.update(tasks[task], completed=done, total=total)

        yield update


def done(message: str) -> None:
    """Print the one-line summary of a job."""
    typer.echo(message)


@app.callback()
def main(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More logging (-v info, -vv debug).")] = 0,
) -> None:
    """Set up logging for every command."""
    from rich.logging import RichHandler

    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(message)s", handlers=[RichHandler(show_path=False)], force=True)


@app.command()
def version() -> None:
    """Print the cmrclip version."""
    typer.echo(__version__)


# --- synth (issue 2) ---

# --- ingest (issue 3) ---

# --- reports, tokenizer (issue 7) ---

# --- weights, pretrain, embed (issue 4) ---

# --- finetune, zeroshot, experiment (issue 5) ---

# --- evaluate (issue 6) ---

# --- predict, explain, serve, demo (issue 8) ---
