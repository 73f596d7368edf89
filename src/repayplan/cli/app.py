"""The Typer application and the one place that turns errors into a one-line message."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
import typer
from rich.console import Console

from repayplan.errors import RepayplanError

app = typer.Typer(
    name="repayplan",
    help="Personalised loan repayment plans by optimisation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

console = Console()
err_console = Console(stderr=True)


def emit_json(payload: Any) -> None:
    """Print ``payload`` as JSON on stdout (Decimals and dates as strings)."""
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


def main() -> None:
    """Entry point: run the app; a RepayplanError becomes ``error: ...`` on stderr, exit 2."""
    try:
        app(standalone_mode=False)
    except RepayplanError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
