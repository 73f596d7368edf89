"""The Typer application and the CLI's one error boundary (:func:`main`).

Every error ends as exactly one line on stderr:

- a user error — a :class:`~repayplan.errors.InputError` from the library, or any usage
  error of typer's parser (typer raises its vendored ``typer._click`` exceptions, not
  ``click``'s) — prints ``error: FIELD: reason`` and exits 2;
- anything else prints ``error: unexpected <Kind>: <scrubbed message> (details in LOG)``
  and exits 1; the log file (mode 0600) holds the traceback with every message scrubbed
  (:func:`repayplan.errors.format_scrubbed_traceback`), so no personal data reaches it.

Log files go to ``$REPAYPLAN_LOG_DIR``, else ``.repayplan/logs`` under the current folder.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from typer._click import exceptions as click_exc

from repayplan.errors import (
    InputError,
    RepayplanError,
    ScrubbedError,
    format_scrubbed_traceback,
    scrub_text,
    scrubbed,
)

app = typer.Typer(
    name="repayplan",
    help="Personalised loan repayment plans by optimisation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

console = Console()
err_console = Console(stderr=True)

#: Environment variable naming the folder of the CLI's error logs.
LOG_DIR_VAR = "REPAYPLAN_LOG_DIR"


def emit_json(payload: Any) -> None:
    """Print ``payload`` as JSON on stdout (Decimals and dates as strings)."""
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


def table(title: str | None = None, **kwargs: Any) -> Table:
    """The CLI's table: no lines, an underlined header and no outer padding, so that a plan
    table fits 80 columns; columns made with :func:`column` never split a value (amounts,
    plan names) — prose columns fold."""
    return Table(title=title, box=None, pad_edge=False, header_style="bold underline", **kwargs)


def column(table_: Table, name: str, *, numeric: bool = False, prose: bool = False) -> None:
    """Add a column: right-aligned when ``numeric``; only a ``prose`` column may wrap."""
    table_.add_column(
        name,
        justify="right" if numeric else "left",
        no_wrap=not prose,
        overflow="fold" if prose else "ellipsis",
    )


#: Dates a person may type for a run or a book (far dates are typing mistakes).
FIRST_DATE, LAST_DATE = date(1900, 1, 1), date(2200, 12, 31)


def parse_date(text: str | None, field: str) -> date | None:
    """A ``YYYY-MM-DD`` option as a date (None stays None), between :data:`FIRST_DATE` and
    :data:`LAST_DATE`; InputError naming ``field`` otherwise."""
    if text is None:
        return None
    try:
        value = datetime.strptime(text.strip(), "%Y-%m-%d").date()
    except ValueError:
        raise InputError(f"not a date (YYYY-MM-DD): {text[:40]!r}", field=field) from None
    if not FIRST_DATE <= value <= LAST_DATE:
        raise InputError(f"must be between {FIRST_DATE} and {LAST_DATE}, got {value}", field=field)
    return value


def log_dir() -> Path:
    """Where :func:`main` writes the log of an unexpected error."""
    return Path(os.environ.get(LOG_DIR_VAR) or Path.cwd() / ".repayplan" / "logs")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _error(text: str, code: int) -> None:
    err_console.print(
        f"[red]error:[/red] {_one_line(text)}", highlight=False, soft_wrap=True, markup=True
    )
    sys.exit(code)


def usage_message(exc: click_exc.UsageError) -> str:
    """A typer usage error as ``FIELD: reason`` (the option's longest name as FIELD)."""
    param = getattr(exc, "param", None)
    if isinstance(exc, click_exc.NoSuchOption):
        return f"{exc.option_name}: no such option"
    if isinstance(exc, click_exc.BadOptionUsage):
        return f"{exc.option_name}: {exc.format_message()}"
    hint = getattr(exc, "param_hint", None)
    if param is not None:
        names = [o for o in getattr(param, "opts", []) if o.startswith("--")] or [param.name]
        field = max(names, key=len)
    elif isinstance(hint, str):
        field = hint.strip("'\"")
    else:
        field = "usage"
    if isinstance(exc, click_exc.MissingParameter):
        return f"{field}: required"
    reason = exc.format_message()
    if reason.startswith("Invalid value for"):
        reason = reason.split(":", 1)[-1].strip()
    return f"{field}: {reason or 'invalid'}"


def _write_log(exc: BaseException) -> Path | None:
    folder = log_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"error-{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}.log"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(f"repayplan {' '.join(sys.argv[1:2])} failed at {datetime.now()}\n\n")
            handle.write(format_scrubbed_traceback(exc))
    except OSError:
        return None
    return path


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app behind the error boundary described in the module docstring.
    ``argv``: the arguments (default ``sys.argv[1:]``)."""
    # The CLI prints its own one-line errors and summaries: Prefect's console handler shows
    # only critical messages (its logs still reach the Prefect server; set this variable to
    # WARNING to see them here).
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    try:
        app(args=argv, standalone_mode=False, prog_name="repayplan")
    except RepayplanError as exc:
        if isinstance(exc, ScrubbedError):
            _unexpected(exc)
        _error(str(exc), 2)
    except click_exc.NoArgsIsHelpError:
        sys.exit(2)  # typer printed the help already
    except click_exc.UsageError as exc:
        _error(usage_message(exc), 2)
    except click_exc.ClickException as exc:
        _error(scrub_text(exc.format_message()), exc.exit_code or 1)
    except (KeyboardInterrupt, typer.Abort):
        err_console.print("interrupted", highlight=False)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        _unexpected(exc)


def _unexpected(exc: BaseException) -> None:
    safe = scrubbed(exc)
    path = _write_log(exc)
    where = f" (details in {path})" if path else ""
    message = str(safe) if isinstance(safe, ScrubbedError) else scrub_text(str(safe))
    _error(f"unexpected {message}{where}", 1)
