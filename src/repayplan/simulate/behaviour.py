"""The two behaviour models a simulation can run on, behind one interface.

- :class:`TruthBehaviour` — the demo generator's own model (:mod:`repayplan.store.behaviour`:
  income with seasonality, volatility and shocks; the true miss hazard; cures, prepayment),
  with the parameters stored in ``behaviour_truth`` and each borrower's shock state at
  ``as_of`` read from ``loan_month_truth``. Only the simulator reads these: it is how the
  engine's decisions are judged on a book whose truth is known.
- :class:`FittedBehaviour` — the lender's fitted model
  (:class:`~repayplan.risk.miss_model.MissModel`), for an imported book without truth:
  usual income × seasonality × the reported hardship factor until the expected recovery.

Both turn the engine's common random numbers (:class:`Draws`) into each month's income and
each due installment's miss probability, so every policy meets the same luck.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from repayplan.risk.miss_model import MissModel, active_miss_model
from repayplan.simulate.book import Book
from repayplan.store.behaviour import BehaviourParams, monthly_income, step_shocks, true_hazard

BEHAVIOURS = ("truth", "fitted")


@dataclass
class Draws:
    """One month's random numbers: ``shock`` and ``noise`` per (borrower, path); ``miss``,
    ``cure`` and ``prepay`` uniforms per (loan, path)."""

    shock: np.ndarray
    noise: np.ndarray
    miss: np.ndarray
    cure: np.ndarray
    prepay: np.ndarray


def month_draws(seed: int, month: int, borrowers: int, loans: int, paths: int) -> Draws:
    """The draws of ``month`` (1-based): a function of the seed and the month alone, so every
    policy simulated with the same seed sees the same numbers."""
    rng = np.random.default_rng([seed, month])
    return Draws(
        shock=rng.random((borrowers, paths)),
        noise=rng.standard_normal((borrowers, paths)),
        miss=rng.random((loans, paths)),
        cure=rng.random((loans, paths)),
        prepay=rng.random((loans, paths)),
    )


class TruthBehaviour:
    """The demo generator's true behaviour (see the module docstring)."""

    name = "truth"

    def __init__(self, params: BehaviourParams, shock0: np.ndarray):
        self.params = params
        self.shock0 = shock0
        self.cure_probability = params.cure_probability
        self.prepayment_probability = params.prepayment_probability
        self.late_fee_rate = params.late_fee_rate
        self.late_fee_cap = round(params.late_fee_cap * 100)

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection, book: Book) -> TruthBehaviour:
        """Parameters from ``behaviour_truth``; each borrower's shock state at the latest due
        date up to ``as_of`` (borrowers without one start in the long-run share)."""
        from repayplan.risk.oracle import true_params

        if con.execute("SELECT count(*) FROM behaviour_truth").fetchone()[0] == 0:
            from repayplan.errors import InputError

            raise InputError(
                "this book has no ground truth (not a demo book); use --behaviour fitted",
                field="behaviour",
            )
        params = true_params(con)
        con.register(
            "sim_loans",
            pa.table({"loan_id": pa.array(book.loan_ids.tolist(), pa.string()),
                      "b": pa.array(book.borrower, pa.int64())}),
        )  # fmt: skip
        try:
            rows = con.execute(
                "SELECT s.b, bool_or(t.shock) FROM sim_loans s JOIN ("
                "  SELECT loan_id, arg_max(shock, due_date) AS shock FROM loan_month_truth"
                "  WHERE due_date <= ? AND loan_id IN (SELECT loan_id FROM sim_loans)"
                "  GROUP BY loan_id) t USING (loan_id) GROUP BY s.b",
                [book.as_of],
            ).fetchall()
        finally:
            con.unregister("sim_loans")
        known = np.zeros(book.borrower_ids.size, dtype=bool)
        shock = np.zeros(book.borrower_ids.size, dtype=bool)
        for b, s in rows:
            known[b], shock[b] = True, bool(s)
        onset = params.shock_onset()[book.segment[_first_loan(book)]]
        stationary = onset / (onset + 1.0 / params.shock_mean_months)
        rng = np.random.default_rng([len(book.loan_ids), 5])
        shock[~known] = rng.random(int((~known).sum())) < stationary[~known]
        return cls(params, shock)

    def start(self, book: Book, paths: int) -> None:
        """Reset the per-path state for a run over ``book`` with ``paths`` paths."""
        self.book = book
        self.shock = np.repeat(self.shock0[:, None], paths, axis=1)
        self.borrower_segment = book.segment[_first_loan(book)]

    def income(self, month: int, calendar_month: int, draws: Draws) -> np.ndarray:
        """Income of each (loan, path) this month (cents); advances the shocks."""
        self.shock, _ = step_shocks(
            self.shock, self.borrower_segment[:, None], draws.shock, self.params
        )
        b = self.book
        per_borrower = monthly_income(
            b.income[:, None].astype(np.float64),
            b.season[:, calendar_month][:, None],
            b.volatility[:, None],
            self.shock,
            draws.noise,
            self.params,
        )
        return per_borrower[b.borrower]

    def miss_probability(self, rows: np.ndarray, pti: np.ndarray, unpaid: np.ndarray) -> np.ndarray:
        """Miss probability of loans ``rows`` (all paths) at ``pti`` with ``unpaid`` due."""
        shock = self.shock[self.book.borrower[rows]]
        return true_hazard(pti, shock, unpaid, self.book.segment[rows][:, None], self.params)


class FittedBehaviour:
    """The lender's fitted model (see the module docstring): no shocks beyond those reported."""

    name = "fitted"
    prepayment_probability = 0.0
    late_fee_rate = 0.05
    late_fee_cap = 2500

    def __init__(self, model: MissModel):
        self.model = model
        self.cure_probability = model.cure_probability

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection, book: Book) -> FittedBehaviour:
        """The miss model stored with the active risk model (defaults when none)."""
        return cls(active_miss_model(con))

    def start(self, book: Book, paths: int) -> None:
        """Remember the book; the fitted model keeps no per-path state."""
        self.book = book
        self.paths = paths

    def income(self, month: int, calendar_month: int, draws: Draws) -> np.ndarray:
        """Expected income of each (loan, path) this month (cents): usual × season × the
        hardship factor while the reported hardship lasts."""
        b = self.book
        base = b.income[b.borrower] * b.season[b.borrower, calendar_month]
        factor = np.where(month <= b.recovery_month, b.hardship_factor, 1.0)
        return np.repeat((base * factor)[:, None], self.paths, axis=1)

    def miss_probability(self, rows: np.ndarray, pti: np.ndarray, unpaid: np.ndarray) -> np.ndarray:
        """Miss probability from the fitted model."""
        return self.model.hazard(pti, unpaid, self.book.segment[rows][:, None])


def _first_loan(book: Book) -> np.ndarray:
    first = np.zeros(book.borrower_ids.size, dtype=np.int64)
    first[book.borrower[::-1]] = np.arange(book.size)[::-1]
    return first


def load_behaviour(
    con: duckdb.DuckDBPyConnection, name: str, book: Book
) -> TruthBehaviour | FittedBehaviour:
    """The behaviour model called ``name`` (``truth`` or ``fitted``) for ``book``."""
    if name == "truth":
        return TruthBehaviour.load(con, book)
    if name == "fitted":
        return FittedBehaviour.load(con, book)
    from repayplan.errors import InputError

    raise InputError(
        f"unknown behaviour {name!r}; use one of {', '.join(BEHAVIOURS)}", field="behaviour"
    )
