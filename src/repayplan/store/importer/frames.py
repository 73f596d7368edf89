"""Arrow data into DuckDB: integer cents as ``DECIMAL(18,2)`` and appends through a relation."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa


def money(cents: np.ndarray) -> pa.Array:
    """Integer cents as an Arrow ``decimal64(18, 2)`` array: the same 64-bit integers
    reinterpreted, so DuckDB stores them as ``DECIMAL(18,2)`` with no arithmetic."""
    cents = np.ascontiguousarray(cents, dtype=np.int64)
    return pa.Array.from_buffers(pa.decimal64(18, 2), len(cents), [None, pa.py_buffer(cents)])


def append(
    con: duckdb.DuckDBPyConnection, frame: pa.Table, table: str, columns: str | None = None
) -> None:
    """Insert ``frame`` (its columns projected by ``columns``, SQL) into ``table``.

    Through a relation, not a registered view: inside a transaction DuckDB keeps every
    registered Python object alive until commit, which made memory grow with the import.
    """
    relation = con.from_arrow(frame)
    if columns is not None:
        relation = relation.project(columns)
    relation.insert_into(table)
