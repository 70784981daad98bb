"""Command-line interface (`trouter ...`)."""

from trouter.cli.app import app, main, run

__all__ = ["app", "main", "run"]
