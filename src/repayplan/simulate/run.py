"""``simulate``: what each policy's plans lead to on a book, stored for analysts and reports.

Steps: pick the loans (:func:`~repayplan.simulate.book.select_loans`), read their state
(:func:`~repayplan.simulate.book.load_book`), build every policy's plans
(:mod:`repayplan.simulate.policies`), run them forward on the same random numbers
(:func:`~repayplan.simulate.engine.run_paths`), summarise with paired bootstrap intervals
(:mod:`repayplan.simulate.summary`) and write ``simulation_runs`` / ``simulation_results``
in one transaction. With ``frontier`` budgets the optimiser's selection is re-run at each
concession budget on the same candidates, giving the efficient frontier beside the
contract and waterfall points.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from repayplan.errors import InputError
from repayplan.portfolio.nightly_policy import NightlyPolicy, active_policy
from repayplan.risk.burden import BurdenCurve
from repayplan.simulate.behaviour import load_behaviour
from repayplan.simulate.book import Book, latest_run, load_book, select_loans
from repayplan.simulate.engine import PlanSet, run_paths
from repayplan.simulate.policies import (
    BASELINES,
    Rows,
    check_policies,
    contract_rows,
    hurdle_of,
    plan_set,
    rows_from_tables,
    stored_rows,
    template_rows,
    waterfall_rows,
)
from repayplan.simulate.summary import path_metrics, resample_indices, result_rows
from repayplan.store.connection import connect

#: Months simulated for the lender's NPV (loans still open then are valued at the horizon).
VALUE_MONTHS = 60


@dataclass
class SimulationReport:
    """One simulation: its id and settings, the result rows (see
    :mod:`repayplan.simulate.summary`) and seconds per stage."""

    sim_id: str
    as_of: date
    behaviour: str
    paths: int
    seed: int
    loans: int
    horizons: tuple[int, ...]
    policies: list[str]
    run_id: str | None
    rows: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def frame(self) -> pd.DataFrame:
        """The result rows as a DataFrame."""
        return pd.DataFrame(self.rows)

    def estimate(
        self,
        policy: str,
        metric: str,
        horizon: int | None = None,
        versus: str | None = None,
        segment: str = "all",
    ) -> dict[str, Any]:
        """One result row (``horizon`` None: the metric's only horizon)."""
        for row in self.rows:
            if (
                row["policy"] == policy
                and row["metric"] == metric
                and row["segment"] == segment
                and row["versus"] == versus
                and (horizon is None or row["horizon_months"] == horizon)
                and row["concession_budget"] is None
            ):
                return row
        raise KeyError((policy, metric, horizon, versus, segment))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``repayplan simulate --json``)."""
        return {
            "sim_id": self.sim_id,
            "as_of": self.as_of.isoformat(),
            "behaviour": self.behaviour,
            "paths": self.paths,
            "seed": self.seed,
            "loans": self.loans,
            "horizons": list(self.horizons),
            "policies": self.policies,
            "run_id": self.run_id,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "results": self.rows,
        }


def _portfolio_as_of(con: duckdb.DuckDBPyConnection) -> date:
    row = con.execute("SELECT max(as_of) FROM loans").fetchone()
    if row is None or row[0] is None:
        raise InputError("the portfolio has no loans", field="db")
    return row[0]


@dataclass
class _Optimiser:
    """Candidates generated once for the book, and selection at any concession budget."""

    candidates: pd.DataFrame
    plans: pd.DataFrame
    installments: pd.DataFrame
    triggers: pd.DataFrame
    policy: NightlyPolicy

    def rows(self, book: Book, budget: float | None = None, *, use_budget: bool = False) -> Rows:
        from repayplan.portfolio.replan import portfolio_limits
        from repayplan.portfolio.selection import select_plans

        limits = portfolio_limits(self.policy, self.candidates, self.triggers)
        if use_budget:
            limits = dataclasses.replace(limits, concession_budget=budget)
        selection = select_plans(
            self.candidates, limits, method="auto", exact_max_loans=self.policy.exact_max_loans
        )
        chosen = self.plans[self.plans["plan_id"].isin(selection.chosen["plan_id"])]
        return rows_from_tables(book, chosen, self.installments)


def _optimiser(
    con: duckdb.DuckDBPyConnection,
    book: Book,
    policy: NightlyPolicy,
    curve: BurdenCurve,
    sim_id: str,
    solver: str,
) -> _Optimiser:
    from repayplan.portfolio.candidates import generate_candidates
    from repayplan.portfolio.triggers import select_for_replanning
    from repayplan.risk.miss_model import active_miss_model

    result = generate_candidates(
        book.records,
        book.as_of,
        policy,
        f"sim-{sim_id}",
        solver=solver,
        curve=curve,
        miss_model=active_miss_model(con),
    )
    plans = result.plans.select(["plan_id", "loan_id", "alternative", "frequency"]).to_pandas()
    inst = result.installments.select(["plan_id", "due_date", "payment", "balance"]).to_pandas()
    triggers = select_for_replanning(con, book.as_of, policy, "all")
    return _Optimiser(result.candidates.to_pandas(), plans, inst, triggers, policy)


def frontier_budgets(optimiser: _Optimiser, points: int = 6) -> list[float]:
    """``points`` concession budgets from 0 to what the unconstrained selection would spend
    (currency units)."""
    top = float(optimiser.candidates.groupby("loan_id")["concession"].max().sum())
    return [round(top * k / (points - 1), 2) for k in range(points)]


def simulate(
    db: str | Path,
    policies: list[str] | tuple[str, ...] = ("contract", "waterfall", "nightly"),
    *,
    loans: str | None = None,
    run_id: str | None = None,
    sample: int | None = None,
    paths: int = 200,
    horizons: tuple[int, ...] = (12, 24),
    seed: int = 0,
    behaviour: str = "truth",
    frontier: list[float] | str | None = None,
    value_months: int = VALUE_MONTHS,
    solver: str = "fast",
    write: bool = True,
) -> SimulationReport:
    """Simulate ``policies`` on the loans ``loans`` selects (default: the loans of the
    nightly run ``run_id`` — the latest — when ``nightly`` is simulated, else the
    triggered ones), over ``paths`` paths, reporting at ``horizons`` months.

    ``behaviour``: ``truth`` (the demo generator's model; demo books only) or ``fitted``
    (the active risk model's miss model). ``frontier``: concession budgets (currency units)
    or ``"auto"`` for six from 0 to the unconstrained spend; each adds an ``optimize`` point
    with its ``concession_budget``. ``write``: store the results (``simulation_runs``,
    ``simulation_results``).
    """
    names = check_policies(list(policies))
    if paths < 2:
        raise InputError("must be at least 2", field="paths")
    if not horizons or min(horizons) < 1 or max(horizons) > value_months:
        raise InputError(f"horizons must lie in 1..{value_months} months", field="horizon")
    if seed < 0:
        raise InputError("must be a non-negative integer", field="seed")
    started = time.perf_counter()
    timings: dict[str, float] = {}
    sim_id = f"sim-{datetime.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    con = connect(db, read_only=not write)
    try:
        as_of = _portfolio_as_of(con)
        if "nightly" in names or loans == "run":
            run_id = run_id or latest_run(con)
            if run_id is None:
                raise InputError("no completed nightly run to simulate", field="run_id")
        selection = loans or ("run" if "nightly" in names else "triggered")
        ids = select_loans(con, selection, as_of, run_id=run_id, sample=sample, seed=seed)
        book = load_book(con, ids, as_of)
        policy = active_policy(con)
        from repayplan.risk.burden_fit import active_burden_curve

        curve = active_burden_curve(con)
        model = load_behaviour(con, behaviour, book)
        hurdle = hurdle_of(policy)
        contract = contract_rows(con, book)
        timings["read"] = time.perf_counter() - started

        tic = time.perf_counter()
        optimiser = None
        if "optimize" in names or frontier:
            optimiser = _optimiser(con, book, policy, curve, sim_id, solver)
        sets: dict[str, PlanSet] = {}
        budgets: dict[str, float | None] = {}
        for name in names:
            if name == "contract":
                replaced = Rows.empty()
            elif name == "waterfall":
                replaced = waterfall_rows(book, policy, curve)
            elif name == "nightly":
                assert run_id is not None
                replaced = stored_rows(con, book, run_id)
            elif name == "optimize":
                assert optimiser is not None
                replaced = optimiser.rows(book)
            else:
                replaced = template_rows(book, name, policy, curve, solver)
            sets[name] = plan_set(
                book, contract, replaced, horizon=value_months, hurdle_rate=hurdle
            )
        if frontier:
            assert optimiser is not None
            points = frontier_budgets(optimiser) if frontier == "auto" else list(frontier)
            for amount in points:
                label = f"optimize@{amount:.2f}"
                replaced = optimiser.rows(book, amount, use_budget=True)
                sets[label] = plan_set(
                    book, contract, replaced, horizon=value_months, hurdle_rate=hurdle
                )
                budgets[label] = float(amount)
        timings["plans"] = time.perf_counter() - tic

        tic = time.perf_counter()
        lgd = float(policy.plan.lgd)
        metrics = {}
        for name, plans in sets.items():
            out = run_paths(book, plans, model, paths=paths, seed=seed, lgd=lgd, hurdle_rate=hurdle)
            metrics[name] = path_metrics(book, plans, out, tuple(horizons), value_months)
        timings["simulate"] = time.perf_counter() - tic

        idx = resample_indices(paths, seed)
        baselines = tuple(b for b in BASELINES if b in metrics)
        rows = result_rows(metrics, idx, baselines, budgets)
        for row in rows:
            if row["policy"] in budgets:
                row["policy"] = "optimize"
        report = SimulationReport(
            sim_id=sim_id,
            as_of=as_of,
            behaviour=behaviour,
            paths=paths,
            seed=seed,
            loans=book.size,
            horizons=tuple(horizons),
            policies=names,
            run_id=run_id,
            rows=rows,
            timings=timings,
        )
        timings["total"] = time.perf_counter() - started
        if write:
            _store(con, report, selection, sample, value_months)
        return report
    finally:
        con.close()


def _store(
    con: duckdb.DuckDBPyConnection,
    report: SimulationReport,
    selection: str,
    sample: int | None,
    value_months: int,
) -> None:
    params = {
        "policies": report.policies,
        "loans": selection,
        "sample": sample,
        "value_months": value_months,
        "timings": {k: round(v, 3) for k, v in report.timings.items()},
    }
    frame = report.frame()
    frame.insert(0, "sim_id", report.sim_id)
    frame["concession_budget"] = frame["concession_budget"].astype(float)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM simulation_results WHERE sim_id = ?", [report.sim_id])
        con.execute("DELETE FROM simulation_runs WHERE sim_id = ?", [report.sim_id])
        con.execute(
            "INSERT INTO simulation_runs VALUES (?, ?, ?, current_timestamp, ?, ?, ?, ?, ?, "
            "?::JSON, ?)",
            [
                report.sim_id,
                report.run_id,
                report.as_of,
                report.behaviour,
                report.paths,
                report.seed,
                report.loans,
                ",".join(str(h) for h in report.horizons),
                json.dumps(params),
                report.timings.get("total"),
            ],
        )
        con.register("sim_frame", frame)
        con.execute(
            "INSERT INTO simulation_results SELECT sim_id, policy, concession_budget, segment, "
            "metric, horizon_months, estimate, ci_low, ci_high, versus FROM sim_frame"
        )
        con.unregister("sim_frame")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
