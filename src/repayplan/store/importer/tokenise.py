"""Personal data to keyed tokens inside DuckDB: SQL functions ``pii_borrower``,
``pii_full_name``, ``pii_national_id``, ``pii_phone`` (:mod:`repayplan.store.pii`'s HMAC),
called by the read that stages a file so the plaintext is never materialised.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress

import duckdb
import pyarrow as pa

from repayplan.store.pii import Pseudonymiser

_PII = ("full_name", "national_id", "phone")
_TOKEN_KINDS = ("borrower", *_PII)


def register_tokens(con: duckdb.DuckDBPyConnection, pseudo: Pseudonymiser) -> None:
    """SQL functions ``pii_borrower``, ``pii_full_name``, ``pii_national_id``, ``pii_phone``:
    VARCHAR → keyed token (NULL stays NULL), vectorised over Arrow batches."""
    for kind in _TOKEN_KINDS:
        con.create_function(
            f"pii_{kind}",
            _tokeniser(pseudo, kind),
            ["VARCHAR"],
            "VARCHAR",
            type="arrow",
            null_handling="special",
            side_effects=False,
        )


def unregister_tokens(con: duckdb.DuckDBPyConnection) -> None:
    """Remove the functions :func:`register_tokens` registered (those it did, if any)."""
    for kind in _TOKEN_KINDS:
        with suppress(duckdb.Error):  # not registered: the import stopped before
            con.remove_function(f"pii_{kind}")


def _tokeniser(pseudo: Pseudonymiser, kind: str) -> Callable[[pa.ChunkedArray], pa.Array]:
    """The Arrow UDF body for one kind of personal value (one DuckDB vector per call)."""

    def tokens(values: pa.ChunkedArray) -> pa.Array:
        return pa.array(pseudo.tokens(kind, values.to_pylist()), pa.string())

    return tokens
