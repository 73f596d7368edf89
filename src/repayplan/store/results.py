"""The single writer of a nightly run: only the flow process writes DuckDB, once, at the end.

:func:`start_run` records the run as ``running`` (and marks any other ``running`` run
``interrupted``: DuckDB lets one process write a file, so a run still marked ``running``
when a new one can open the file for writing was killed). :func:`write_run` then loads
everything the run produced — plans, installments, triggers, failures and the finished run
row — in ONE transaction that first deletes the results of earlier runs of the same
``as_of`` and ``kind``. A run killed before that commit leaves no results at all; re-running
an ``as_of`` replaces its results instead of duplicating them.

Money arrives in integer cents (Arrow ``int64``) and is stored as ``DECIMAL(18,2)`` through
the exact ``money_of_cents`` macro.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa


@dataclass
class RunRecord:
    """The ``runs`` row of one run (``timings`` in seconds per stage, money in currency)."""

    run_id: str
    as_of: date
    kind: str = "nightly"
    started_at: datetime = field(default_factory=datetime.now)
    finished_at: datetime | None = None
    status: str = "running"
    parameters: dict[str, Any] = field(default_factory=dict)
    policy_id: str | None = None
    loans_considered: int = 0
    loans_replanned: int = 0
    plans_written: int = 0
    counts: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    solver_stats: dict[str, Any] = field(default_factory=dict)
    message: str | None = None
    selection_method: str | None = None
    selection_objective: float | None = None
    selection_bound: float | None = None
    selection_gap: float | None = None


#: An Arrow table, or Parquet files of the same columns (read by DuckDB as it inserts, so
#: the writer's memory does not grow with the run).
Source = pa.Table | Sequence[Path]


@dataclass
class RunTables:
    """What a run writes: ``plans`` (every candidate plan, ``portfolio.candidates.
    PLAN_SCHEMA``), ``installments`` (``INSTALLMENT_SCHEMA``; only those of ``chosen`` plans
    are kept), ``chosen`` (the plan ids chosen, one per loan), ``triggers`` (``loan_id``,
    ``reasons`` list, ``eligible``, ``ineligible_reason``) and ``failures`` (``loan_id``,
    ``stage``, ``reason``)."""

    plans: Source
    installments: Source
    chosen: Sequence[str]
    triggers: pa.Table
    failures: pa.Table


_RUN_COLUMNS = (
    "run_id",
    "kind",
    "as_of",
    "started_at",
    "finished_at",
    "status",
    "parameters",
    "policy_id",
    "loans_considered",
    "loans_replanned",
    "plans_written",
    "counts",
    "timings",
    "solver_stats",
    "message",
    "selection_method",
    "selection_objective",
    "selection_bound",
    "selection_gap",
)
_JSON = {"parameters", "counts", "timings", "solver_stats"}


def _run_values(run: RunRecord) -> list[Any]:
    return [
        json.dumps(getattr(run, c), default=str) if c in _JSON else getattr(run, c)
        for c in _RUN_COLUMNS
    ]


def start_run(con: duckdb.DuckDBPyConnection, run: RunRecord) -> int:
    """Record ``run`` as running; mark every other ``running`` run ``interrupted``.
    Returns how many runs were marked interrupted."""
    con.execute("BEGIN TRANSACTION")
    try:
        stale = con.execute(
            "UPDATE runs SET status = 'interrupted', "
            "message = 'interrupted: the process stopped before its results were written' "
            "WHERE status = 'running' AND run_id <> ? RETURNING run_id",
            [run.run_id],
        ).fetchall()
        marks = ", ".join("?" for _ in _RUN_COLUMNS)
        con.execute(
            f"INSERT INTO runs ({', '.join(_RUN_COLUMNS)}) VALUES ({marks})", _run_values(run)
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return len(stale)


def write_run(con: duckdb.DuckDBPyConnection, run: RunRecord, tables: RunTables) -> int:
    """Write a finished run in one transaction, replacing earlier results of the same
    ``as_of`` and ``kind`` (their plans, installments, triggers, failures and run rows;
    interrupted runs stay as history). Returns the number of plans written."""
    earlier = (
        "SELECT run_id FROM runs WHERE as_of = $as_of AND kind = $kind AND run_id <> $run_id "
        "AND status <> 'interrupted'"
    )
    key = {"as_of": run.as_of, "kind": run.kind, "run_id": run.run_id}
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            "DELETE FROM plan_installments WHERE plan_id IN (SELECT plan_id FROM plans "
            f"WHERE run_id IN ({earlier}))",
            key,
        )
        for table in ("plans", "replan_triggers", "plan_failures"):
            con.execute(f"DELETE FROM {table} WHERE run_id IN ({earlier})", key)
        con.execute(f"DELETE FROM runs WHERE run_id IN ({earlier})", key)
        # The run itself may have written nothing yet, but a retry of write_run must not
        # double its rows either.
        con.execute(
            "DELETE FROM plan_installments WHERE plan_id IN "
            "(SELECT plan_id FROM plans WHERE run_id = $run_id)",
            {"run_id": run.run_id},
        )
        for table in ("plans", "replan_triggers", "plan_failures"):
            con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run.run_id])

        _attach(con, "plans_in", tables.plans)
        _attach(con, "inst_in", tables.installments)
        con.register("chosen_in", pa.table({"plan_id": pa.array(tables.chosen, pa.string())}))
        plans_written = con.execute(
            """INSERT INTO plans (plan_id, run_id, loan_id, alternative, chosen, status,
                   annual_rate_percent, term_periods, frequency, objective, total_paid,
                   total_interest, npv, apr_percent, pd, expected_loss, max_pti, concession,
                   forborne_principal, metrics, explanation, solver, created_at, arm)
               SELECT plan_id, $run_id, loan_id, alternative,
                   plan_id IN (SELECT plan_id FROM chosen_in), status::plan_status,
                   CAST(CAST(annual_rate AS DECIMAL(18,10)) * 100 AS DECIMAL(7,4)),
                   term_periods, frequency::frequency, objective,
                   money_of_cents(total_paid), money_of_cents(total_interest),
                   money_of_cents(npv), apr_percent, pd, money_of_cents(expected_loss),
                   max_pti, money_of_cents(concession), money_of_cents(forborne_principal),
                   metrics::JSON, explanation, solver, $now, arm
               FROM plans_in""",
            {"run_id": run.run_id, "now": run.finished_at or datetime.now()},
        ).fetchone()[0]
        con.execute(
            """INSERT INTO plan_installments
               SELECT plan_id, number, due_date, money_of_cents(payment),
                      money_of_cents(principal), money_of_cents(interest),
                      money_of_cents(balance)
               FROM inst_in WHERE plan_id IN (SELECT plan_id FROM chosen_in)"""
        )
        for name in ("plans_in", "inst_in", "chosen_in"):
            con.unregister(name)
        con.register("triggers_in", tables.triggers)
        con.execute(
            "INSERT INTO replan_triggers SELECT $run_id, loan_id, reasons, eligible, "
            "ineligible_reason FROM triggers_in",
            {"run_id": run.run_id},
        )
        con.unregister("triggers_in")
        con.register("failures_in", tables.failures)
        con.execute(
            "INSERT INTO plan_failures SELECT $run_id, loan_id, stage, reason FROM failures_in",
            {"run_id": run.run_id},
        )
        con.unregister("failures_in")
        run.plans_written = int(plans_written)
        sets = ", ".join(f"{c} = ?" for c in _RUN_COLUMNS[1:])
        con.execute(f"UPDATE runs SET {sets} WHERE run_id = ?", [*_run_values(run)[1:], run.run_id])
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return run.plans_written


def _attach(con: duckdb.DuckDBPyConnection, name: str, source: Source) -> None:
    """Make ``source`` queryable as ``name``: an Arrow table is registered, Parquet files
    become a temporary view over ``read_parquet``."""
    if isinstance(source, pa.Table):
        con.register(name, source)
    elif source:
        con.register(name, con.read_parquet([str(f) for f in source]))
    else:
        raise ValueError(f"{name}: no Parquet files (pass an empty Arrow table instead)")


def fail_run(con: duckdb.DuckDBPyConnection, run_id: str, message: str) -> None:
    """Mark a run ``failed`` with ``message`` (its results, if any, are left as they were)."""
    con.execute(
        "UPDATE runs SET status = 'failed', finished_at = current_timestamp::TIMESTAMP, "
        "message = ? WHERE run_id = ?",
        [message, run_id],
    )
