"""A run's candidate plans on disk, so that the flow process's memory does not grow with the
portfolio.

The parallel stage returns one :class:`~repayplan.portfolio.candidates.ChunkResult` per chunk.
Selection needs only the small ``candidates`` table (≈ 0.4 KB per loan); the plans
(≈ 3 KB per loan: metrics, explanations) and their cent-exact schedules (≈ 17 KB per loan)
are needed again only for the chosen plans (compliance) and by the single writer, which
loads them with DuckDB straight from Parquet. :class:`CandidateSpill` keeps the candidates
and failures in memory and writes each chunk's plans and installments to Parquet files in a
scratch folder next to the database (never the system temp folder, which is often RAM).

The files hold no personal data (ids are pseudonymous, amounts are plans), and the folder is
removed when the run ends; a killed run's folder is removed by the next run
(:func:`clear_stale_scratch`).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from repayplan.portfolio.candidates import (
    CANDIDATE_SCHEMA,
    FAILURE_SCHEMA,
    INSTALLMENT_SCHEMA,
    PLAN_SCHEMA,
    ChunkResult,
)


def scratch_root(db: str | Path) -> Path:
    """The folder that holds the runs' scratch folders of ``db``: ``<db>.scratch``."""
    db = Path(db)
    return db.with_name(db.name + ".scratch")


def clear_stale_scratch(db: str | Path, keep: str | None = None) -> int:
    """Remove the scratch folders of earlier runs of ``db`` (killed runs leave theirs), all
    but ``keep``. Call it only while this process is the writer (after ``start_run``).
    Returns how many folders were removed."""
    root = scratch_root(db)
    if not root.is_dir():
        return 0
    stale = [p for p in root.iterdir() if p.is_dir() and p.name != keep]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return len(stale)


@contextmanager
def run_scratch(db: str | Path, run_id: str) -> Iterator[Path]:
    """A fresh scratch folder for ``run_id`` next to ``db``, removed on exit (success or
    not); the root folder goes too when it is left empty."""
    root = scratch_root(db)
    folder = root / run_id
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        with suppress(OSError):  # other runs' folders are still there
            root.rmdir()


class CandidateSpill:
    """The candidates of a run: ``candidates`` and ``failures`` in memory, plans and
    installments as one Parquet file per chunk in ``folder``."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._candidates: list[pa.Table] = []
        self._failures: list[pa.Table] = []
        self._plan_files: list[Path] = []
        self._installment_files: list[Path] = []
        self.loans = 0
        self.seconds = 0.0

    def add(self, part: ChunkResult) -> None:
        """Keep ``part``'s candidates and failures; write its plans and installments."""
        n = len(self._candidates)
        self._candidates.append(part.candidates)
        self._failures.append(part.failures)
        for table, files, stem in (
            (part.plans, self._plan_files, "plans"),
            (part.installments, self._installment_files, "installments"),
        ):
            if table.num_rows:
                path = self.folder / f"{stem}-{n:06d}.parquet"
                pq.write_table(table, path, compression="zstd")
                files.append(path)
        self.loans += part.loans
        self.seconds += part.seconds

    @property
    def candidates(self) -> pa.Table:
        """Every candidate row (``CANDIDATE_SCHEMA``), in chunk order."""
        return _concat(self._candidates, CANDIDATE_SCHEMA)

    @property
    def failures(self) -> pa.Table:
        """Every failure row (``FAILURE_SCHEMA``), in chunk order."""
        return _concat(self._failures, FAILURE_SCHEMA)

    @property
    def plan_files(self) -> list[Path]:
        """The Parquet files of the plans (``PLAN_SCHEMA``)."""
        return list(self._plan_files)

    @property
    def installment_files(self) -> list[Path]:
        """The Parquet files of the installments (``INSTALLMENT_SCHEMA``)."""
        return list(self._installment_files)

    def plans(self, plan_ids: list[str]) -> pa.Table:
        """The plans with these ids (``PLAN_SCHEMA``)."""
        return _read(self._plan_files, PLAN_SCHEMA, plan_ids)

    def installments(self, plan_ids: list[str]) -> pa.Table:
        """The installments of these plans (``INSTALLMENT_SCHEMA``)."""
        return _read(self._installment_files, INSTALLMENT_SCHEMA, plan_ids)


def _concat(tables: list[pa.Table], schema: pa.Schema) -> pa.Table:
    return pa.concat_tables(tables) if tables else schema.empty_table()


def _read(files: list[Path], schema: pa.Schema, plan_ids: list[str]) -> pa.Table:
    if not files or not plan_ids:
        return schema.empty_table()
    wanted = pc.field("plan_id").isin(pa.array(plan_ids, pa.string()))
    return ds.dataset([str(f) for f in files], schema=schema, format="parquet").to_table(
        filter=wanted
    )
