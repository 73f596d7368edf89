"""A run's candidate plans on disk, so that the flow process's memory does not grow with the
portfolio.

The parallel stage returns one :class:`~repayplan.portfolio.candidates.ChunkResult` per chunk.
Selection needs only the small ``candidates`` table (≈ 0.4 KB per loan); the plans
(≈ 3 KB per loan: metrics, explanations) and their cent-exact schedules (≈ 17 KB per loan)
are needed again only for the chosen plans (compliance) and by the single writer, which
loads them with DuckDB straight from Parquet. :class:`CandidateSpill` keeps the candidates
and failures in memory and writes each chunk's plans and schedules to Parquet files in a
scratch folder next to the database (never the system temp folder, which is often RAM).

Schedules are spilled one row per plan (``SCHEDULE_SCHEMA``: the installments' columns as
lists), not one row per installment: ≈ 50× fewer rows to write and to filter, and the
unchosen candidates' schedules (about three in four) are never expanded again. After the
selection, :meth:`CandidateSpill.write_chosen_installments` writes the chosen plans'
installments (``INSTALLMENT_SCHEMA``) to one file, batch by batch, and only that file goes to
the writer.

The files hold no personal data (ids are pseudonymous, amounts are plans), and the folder is
removed when the run ends; a killed run's folder is removed by the next run
(:func:`clear_stale_scratch`).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np
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

#: A chunk's schedules, one row per plan: the installments' columns as lists, in order.
SCHEDULE_SCHEMA = pa.schema(
    [("plan_id", pa.string())]
    + [(f.name, pa.list_(f.type)) for f in INSTALLMENT_SCHEMA if f.name != "plan_id"]
)


def compact_installments(installments: pa.Table) -> pa.Table:
    """``INSTALLMENT_SCHEMA`` rows (each plan's installments consecutive, as
    ``generate_candidates`` builds them) as ``SCHEDULE_SCHEMA`` rows, one per plan."""
    if installments.num_rows == 0:
        return SCHEDULE_SCHEMA.empty_table()
    ids = installments["plan_id"].combine_chunks()
    # Where a new plan starts: the first row, and every row whose plan differs from the last.
    ids_np = ids.to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.r_[True, ids_np[1:] != ids_np[:-1]])
    if len(starts) != len(set(ids_np[starts])):
        raise ValueError("a plan's installments are not consecutive")
    offsets = pa.array(np.r_[starts, len(ids_np)].astype(np.int32))
    columns = {"plan_id": ids.take(pa.array(starts))}
    for field in INSTALLMENT_SCHEMA:
        if field.name != "plan_id":
            values = installments[field.name].combine_chunks()
            columns[field.name] = pa.ListArray.from_arrays(offsets, values)
    return pa.table(columns, schema=SCHEDULE_SCHEMA)


def expand_schedules(schedules: pa.Table) -> pa.Table:
    """``SCHEDULE_SCHEMA`` rows back to ``INSTALLMENT_SCHEMA`` rows (the inverse of
    :func:`compact_installments`)."""
    if schedules.num_rows == 0:
        return INSTALLMENT_SCHEMA.empty_table()
    number = schedules["number"].combine_chunks()
    parents = pc.list_parent_indices(number)
    columns = {"plan_id": schedules["plan_id"].combine_chunks().take(parents)}
    for field in INSTALLMENT_SCHEMA:
        if field.name != "plan_id":
            columns[field.name] = pc.list_flatten(schedules[field.name].combine_chunks())
    return pa.table(columns, schema=INSTALLMENT_SCHEMA)


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
    schedules (``SCHEDULE_SCHEMA``) as one Parquet file per chunk in ``folder``."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._candidates: list[pa.Table] = []
        self._failures: list[pa.Table] = []
        self._plan_files: list[Path] = []
        self._installment_files: list[Path] = []
        self.chosen_installment_file: Path | None = None
        self.loans = 0
        self.seconds = 0.0

    def add(self, part: ChunkResult) -> None:
        """Keep ``part``'s candidates and failures; write its plans and schedules."""
        n = len(self._candidates)
        self._candidates.append(part.candidates)
        self._failures.append(part.failures)
        for table, files, stem in (
            (part.plans, self._plan_files, "plans"),
            (compact_installments(part.installments), self._installment_files, "schedules"),
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
    def schedule_files(self) -> list[Path]:
        """The Parquet files of every candidate's schedule (``SCHEDULE_SCHEMA``)."""
        return list(self._installment_files)

    def plans(self, plan_ids: list[str]) -> pa.Table:
        """The plans with these ids (``PLAN_SCHEMA``)."""
        return _read(self._plan_files, PLAN_SCHEMA, plan_ids)

    def installments(self, plan_ids: list[str]) -> pa.Table:
        """The installments of these plans (``INSTALLMENT_SCHEMA``)."""
        return expand_schedules(_read(self._installment_files, SCHEDULE_SCHEMA, plan_ids))

    def write_chosen_installments(self, plan_ids: list[str]) -> Path | None:
        """Write the installments of these plans (``INSTALLMENT_SCHEMA``) to one Parquet
        file in the scratch folder, batch by batch (memory stays one batch deep), and return
        it (None when there is none). Only this file is handed to the writer."""
        if not self._installment_files or not plan_ids:
            return None
        path = self.folder / "chosen-installments.parquet"
        wanted = pc.field("plan_id").isin(pa.array(plan_ids, pa.string()))
        data = ds.dataset(
            [str(f) for f in self._installment_files], schema=SCHEDULE_SCHEMA, format="parquet"
        )
        with pq.ParquetWriter(path, INSTALLMENT_SCHEMA, compression="zstd") as writer:
            for batch in data.to_batches(filter=wanted):
                if batch.num_rows:
                    writer.write_table(expand_schedules(pa.Table.from_batches([batch])))
        self.chosen_installment_file = path
        return path


def _concat(tables: list[pa.Table], schema: pa.Schema) -> pa.Table:
    return pa.concat_tables(tables) if tables else schema.empty_table()


def _read(files: list[Path], schema: pa.Schema, plan_ids: list[str]) -> pa.Table:
    if not files or not plan_ids:
        return schema.empty_table()
    wanted = pc.field("plan_id").isin(pa.array(plan_ids, pa.string()))
    return ds.dataset([str(f) for f in files], schema=schema, format="parquet").to_table(
        filter=wanted
    )
