"""Errors a person can act on: each names the record and field that is wrong."""

from __future__ import annotations


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
