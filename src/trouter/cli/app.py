"""The `trouter` command-line app. Each command lives in its own module and registers itself on
`app`; `main` turns user errors into one red line and a non-zero exit, with no traceback."""

from __future__ import annotations

import os
import sys
from importlib import import_module

import typer
from rich.console import Console

from trouter import __version__
from trouter.errors import TrouterError

app = typer.Typer(
    name="trouter",
    help="Task-aware LLM routing: synthesise cold-start data, train TRouter, benchmark, serve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
console = Console()
err_console = Console(stderr=True)

#: `--data-root`'s help, for every command that reads named datasets.
DATA_ROOT_HELP = (
    "Folder holding the named datasets (default: TROUTER_DATA_ROOT, else ../shared/data or "
    "shared/data from here or from trouter's source checkout)."
)

# One line per command module; importing a module registers its commands on `app`.
COMMAND_MODULES = (
    "trouter.cli.info",
    "trouter.cli.bench",
    "trouter.cli.train",
    "trouter.cli.adapt",
    "trouter.cli.route",
    "trouter.cli.quickstart",
    "trouter.cli.serve",
    "trouter.cli.logs",
    "trouter.cli.data",
    "trouter.cli.synth",
    "trouter.cli.label",
    "trouter.cli.annotate",
    "trouter.cli.coldstart",
)
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def _register() -> None:
    for module in COMMAND_MODULES:
        import_module(module)


def main() -> None:
    """Entry point of the `trouter` console script."""
    # OpenMP threads busy-wait for each other by default; when another process holds a core
    # (2 shared cores here, a busy server elsewhere) that made torch 5-10x slower. Passive
    # waiting costs nothing measurable on idle cores. Must be set before torch is imported.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    sys.exit(run())


def run(argv: list[str] | None = None) -> int:
    """Run the CLI on `argv` (default: the process arguments) and return the exit code."""
    _register()
    try:
        # Standalone mode lets typer handle --help, usage errors and Ctrl-C (exit 1 / 2 / 130).
        app(args=argv, prog_name="trouter", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except TrouterError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        err_console.print(
            "[yellow]interrupted[/]; everything finished so far is saved, rerun to resume"
        )
        return EXIT_INTERRUPTED
    return 0


@app.callback(invoke_without_command=True)
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    if version:
        console.print(f"trouter {__version__}")
        raise typer.Exit(0)
