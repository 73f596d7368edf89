"""Errors a person can act on, and the one rule for every other error: scrub it before it
is shown, logged, stored or handed to Prefect.

- :class:`InputError` names the record and field that is wrong (the CLI prints it as
  ``error: FIELD: reason`` and exits 2).
- :func:`scrub_text` / :func:`scrubbed` make any exception safe to write anywhere: a
  foreign error's message (DuckDB quotes the raw input line, ``UnicodeDecodeError`` carries
  the undecodable bytes, Arrow quotes the value it could not parse) is cut to its first
  sentence with quoted text redacted, and its chain (``__cause__`` / ``__context__``) is
  dropped. :func:`scrub_errors` applies that at a library boundary where personal data
  enters (the importer), so nothing above it — a log, Prefect's database and result
  storage, the ``runs`` table — can ever see an unscrubbed message.
- :func:`format_scrubbed_traceback` is what the CLI writes to its log file for an
  unexpected error: frames and scrubbed messages, never the raw ones.
"""

from __future__ import annotations

import functools
import re
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

_F = TypeVar("_F", bound=Callable[..., Any])

#: Longest scrubbed message, characters.
MAX_MESSAGE = 300
# 'text' or "text" (a value DuckDB or Arrow quotes back), and bytes reprs (b'\xe9...').
_QUOTED = re.compile(r"""b?'[^'\n]*'|b?"[^"\n]*\"""")
# DuckDB's detail lines that echo the input or the SQL.
_ECHO = ("original line", "line 1:", "possible solution", "file =", "candidate")
_CSV_LINE = re.compile(r"(?:CSV Error on Line|Error when converting column.*line):?\s*(\d+)", re.I)


class RepayplanError(Exception):
    """Base class of every error repayplan raises on purpose (the CLI prints it as one line)."""


class InputError(RepayplanError, ValueError):
    """Bad input: names the record (row, loan id, file) and the field, then what is wrong."""

    def __init__(self, message: str, *, field: str | None = None, record: str | None = None):
        self.field = field
        self.record = record
        self.reason = message
        where = ": ".join(part for part in (record, field) if part)
        super().__init__(f"{where}: {message}" if where else message)

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only fields: the default reduce would lose them when Prefect pickles this.
        return (_rebuild_input_error, (self.reason, self.field, self.record))


def _rebuild_input_error(reason: str, field: str | None, record: str | None) -> InputError:
    return InputError(reason, field=field, record=record)


class ScrubbedError(RepayplanError):
    """An unexpected error whose message was scrubbed (see :func:`scrubbed`); ``kind`` is
    the original exception's class name. Not the user's fault: the CLI reports it with a log
    file path and exit status 1."""

    def __init__(self, kind: str, message: str):
        self.kind = kind
        super().__init__(f"{kind}: {message}" if message else kind)


def scrub_text(text: str) -> str:
    """``text`` (an exception message) cut to what is safe to show and keep: the lines
    before the first blank line, without DuckDB's lines that echo the input or the SQL,
    quoted values replaced by ``'…'``, on one line, at most :data:`MAX_MESSAGE` characters.
    A CSV line number DuckDB reports is kept (``line 17``)."""
    kept: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            if kept:
                break
            continue
        if line.lower().startswith(_ECHO):
            continue
        kept.append(_QUOTED.sub("'…'", line))
    out = " ".join(kept)
    found = _CSV_LINE.search(text)
    if found and f"line {found.group(1)}" not in out.lower():
        out += f" (line {found.group(1)})"
    if len(out) > MAX_MESSAGE:
        out = out[: MAX_MESSAGE - 1] + "…"
    return out


def scrubbed(exc: BaseException) -> BaseException:
    """An exception safe to show, log, pickle or store in place of ``exc``.

    Our own :class:`RepayplanError` messages are written so that they never quote personal
    data: ``exc`` itself is returned (the caller re-raises it ``from None`` so its chain,
    which may hold a foreign error, goes). Anything else becomes a :class:`ScrubbedError`
    with the scrubbed message and the original traceback (frames only, no messages).
    ``KeyboardInterrupt`` / ``SystemExit`` are returned as they are."""
    if isinstance(exc, RepayplanError) or not isinstance(exc, Exception):
        return exc
    safe = ScrubbedError(type(exc).__name__, scrub_text(str(exc)))
    return safe.with_traceback(exc.__traceback__)


def scrub_errors(func: _F) -> _F:
    """Decorator for a library boundary where personal data enters: whatever ``func``
    raises leaves it scrubbed (:func:`scrubbed`) and without its chain."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            # The finished frames' locals (rows, connections) may hold personal data, and
            # whoever keeps the exception (Prefect keeps a task's) would keep them alive.
            traceback.clear_frames(exc.__traceback__)
            safe = scrubbed(exc)
            safe.__cause__ = None
            safe.__context__ = None
            raise safe from None

    return wrapper  # type: ignore[return-value]


def format_scrubbed_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` and its chain with every message scrubbed
    (:func:`scrub_text`): the frames' file names, lines and code, never raw messages."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = "".join(traceback.format_tb(current.__traceback__))
        parts.append(
            "Traceback (most recent call last):\n"
            + frames
            + f"{type(current).__module__}.{type(current).__qualname__}: "
            + scrub_text(str(current))
            + "\n"
        )
        nxt = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
        current = nxt
    return "\nraised while handling (or caused by):\n\n".join(parts)
