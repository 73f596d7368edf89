"""Month-by-month simulation of a chunk of demo loans under the behavioural model.

One loop over calendar months (never over loans): up to ``as_of`` each due installment is paid
or missed as :mod:`repayplan.store.behaviour` says, with cures, late fees, restructures,
prepayments and charge-offs; after ``as_of`` the contract in force is projected to maturity.
The result holds the flattened rows of every table the demo writes (money in cents).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from repayplan.store.behaviour import BehaviourParams, monthly_income, step_shocks, true_hazard
from repayplan.store.contract import (
    annuity_payment,
    day_in_month,
    half_even_div,
    month_index,
    period_interest,
)
from repayplan.store.population import Borrowers, Loans

_NAT = np.datetime64("NaT", "D")
# Shock causes per segment: job_loss, illness, business_downturn, seasonal, other
# (the order of HARDSHIP_REASONS).
_CAUSE_MIX = np.array(
    [
        [0.60, 0.30, 0.00, 0.00, 0.10],
        [0.00, 0.25, 0.60, 0.00, 0.15],
        [0.50, 0.20, 0.20, 0.00, 0.10],
        [0.00, 0.20, 0.10, 0.60, 0.10],
    ]
)
_OTHER = 4
_SEASONAL = 3
_SEASONAL_SEGMENT = 3


class _Rows:
    """Columns gathered month by month and concatenated once."""

    def __init__(self, *names: str):
        self.parts: dict[str, list[np.ndarray]] = {n: [] for n in names}

    def add(self, **cols: np.ndarray) -> None:
        for name, col in cols.items():
            self.parts[name].append(col)

    def arrays(self) -> dict[str, np.ndarray]:
        return {n: np.concatenate(v) if v else np.empty(0) for n, v in self.parts.items()}


@dataclass
class Simulation:
    """Everything simulated for one chunk. ``loans`` holds per-loan arrays at ``as_of``
    (indexed like the chunk's :class:`Loans`); the others are row tables whose ``loan`` /
    ``borrower`` columns index the chunk. Money in cents, months since 1970-01."""

    loans: dict[str, np.ndarray]
    contract: dict[str, np.ndarray]
    payments: dict[str, np.ndarray]
    truth: dict[str, np.ndarray]
    income: dict[str, np.ndarray]
    hardship: dict[str, np.ndarray]


def simulate(
    rng: np.random.Generator, bor: Borrowers, ln: Loans, as_of: date, params: BehaviourParams
) -> Simulation:
    """Simulate the chunk's history up to ``as_of`` and project its contracts beyond."""
    return _Chunk(rng, bor, ln, as_of, params).run()


class _Chunk:
    """The state of one chunk while it is simulated: per-loan arrays, per-borrower shocks."""

    def __init__(
        self,
        rng: np.random.Generator,
        bor: Borrowers,
        ln: Loans,
        as_of: date,
        params: BehaviourParams,
    ):
        self.rng, self.bor, self.ln, self.p = rng, bor, ln, params
        self.as_of = np.datetime64(as_of, "D")
        self.as_of_m = int(month_index(np.array([self.as_of]))[0])
        n = ln.number.size
        self.seg = bor.segment[ln.borrower]
        self.periods = ln.periods.copy()  # grows when a restructure extends the term
        self.balance = ln.principal.copy()
        self.installment = annuity_payment(self.balance, ln.rate_e4, ln.months, self.periods)
        self.paid_through = np.zeros(n, dtype=np.int64)  # installments fallen due so far
        self.scheduled = np.ones(n, dtype=bool)  # contract installments still to come
        self.live = np.ones(n, dtype=bool)  # still behaving: not charged off, not repaid early
        self.defaulted = np.zeros(n, dtype=bool)
        self.prepaid = np.zeros(n, dtype=bool)
        self.balance_asof = self.balance.copy()
        self.arrears = np.zeros(n, dtype=np.int64)
        self.fees = np.zeros(n, dtype=np.int64)
        self.unpaid = np.zeros(n, dtype=np.int64)  # installments in arrears
        self.cures = np.zeros(n, dtype=np.int64)
        self.restructures = np.zeros(n, dtype=np.int64)
        self.last_restructure = np.full(n, _NAT)
        self.last_due_no = np.zeros(n, dtype=np.int64)
        self.last_due_date = ln.origination.copy()
        self.next_due = np.full(n, _NAT)
        self.remaining = np.zeros(n, dtype=np.int64)
        self.fee_cap = round(params.late_fee_cap * 100)
        self.fee_rate_bp = round(params.late_fee_rate * 10_000)

        nb = bor.segment.size
        onset = params.shock_onset()[bor.segment]
        # Start borrowers in the shock's long-run share, not all healthy.
        self.shock = rng.random(nb) < onset / (onset + 1.0 / params.shock_mean_months)
        self.cause = np.full(nb, _OTHER, dtype=np.int64)
        self.income = bor.income.astype(np.float64)

        self.contract = _Rows(
            "loan", "number", "due_date", "payment", "principal", "interest", "balance"
        )
        self.pays = _Rows("loan", "payment_date", "amount", "due_date", "number")
        self.truth = _Rows(
            "loan", "month", "due_date", "pti", "shock", "unpaid", "hazard", "missed"
        )
        self.incomes = _Rows("borrower", "month", "income")

    def run(self) -> Simulation:
        orig_m = month_index(self.ln.origination)
        m = int(orig_m.min()) + 1
        while self.scheduled.any() or m <= self.as_of_m:
            if m <= self.as_of_m:
                self._borrowers_month(m)
            elapsed = m - orig_m
            idx = np.flatnonzero(self.scheduled & (elapsed > 0) & (elapsed % self.ln.months == 0))
            if idx.size:
                self._installments_due(m, idx)
            m += 1
        state = self._state_at_as_of()
        return Simulation(
            loans=state,
            contract=self.contract.arrays(),
            payments=self.pays.arrays(),
            truth=self.truth.arrays(),
            income=self.incomes.arrays(),
            hardship=self._hardship(state),
        )

    def _borrowers_month(self, m: int) -> None:
        """Shocks and income of every borrower in month ``m`` (up to as_of)."""
        bor, nb = self.bor, self.bor.segment.size
        self.shock, started = step_shocks(self.shock, bor.segment, self.rng.random(nb), self.p)
        if started.any():
            mix = np.cumsum(_CAUSE_MIX[bor.segment[started]], axis=1)
            self.cause[started] = (self.rng.random((int(started.sum()), 1)) > mix).sum(axis=1)
        calendar_month = m % 12  # months since 1970-01: 0 is January
        self.income = monthly_income(
            bor.income.astype(np.float64),
            bor.season[:, calendar_month],
            bor.volatility,
            self.shock,
            self.rng.standard_normal(nb),
            self.p,
        )
        if self.as_of_m - 12 <= m < self.as_of_m:
            self.incomes.add(
                borrower=np.arange(nb),
                month=np.full(nb, m, dtype=np.int64),
                income=np.rint(self.income).astype(np.int64),
            )

    def _installments_due(self, m: int, idx: np.ndarray) -> None:
        """Installments of loans ``idx`` falling due in month ``m``: contract rows, and
        behaviour where the due date is not after as_of."""
        ln = self.ln
        number = self.paid_through[idx] + 1
        bal = self.balance[idx]
        interest = period_interest(bal, ln.rate_e4[idx], ln.months[idx])
        last = number >= self.periods[idx]
        principal = np.where(last, bal, np.clip(self.installment[idx] - interest, 0, bal))
        amount = principal + interest
        due = day_in_month(np.full(idx.size, m), ln.anchor_day[idx])
        self.balance[idx] = bal - principal
        self.paid_through[idx] = number
        self.scheduled[idx] = ~last
        self.contract.add(
            loan=idx, number=number, due_date=due, payment=amount, principal=principal,
            interest=interest, balance=self.balance[idx],
        )  # fmt: skip
        past = due <= self.as_of
        future = idx[~past]
        first = np.isnat(self.next_due[future])
        self.next_due[future[first]] = due[~past][first]
        self.remaining[future] += 1
        done = idx[past]
        self.balance_asof[done] = self.balance[done]
        self.last_due_no[done] = number[past]
        self.last_due_date[done] = due[past]
        act = past & self.live[idx]
        if act.any():
            self._behave(m, idx[act], due[act], amount[act], last[act])

    def _behave(
        self, m: int, idx: np.ndarray, due: np.ndarray, amount: np.ndarray, last: np.ndarray
    ) -> None:
        """Loans ``idx`` pay or miss installments ``amount`` due on ``due``."""
        p, rng, months = self.p, self.rng, self.ln.months
        borrower = self.ln.borrower[idx]
        pti = amount / months[idx] / np.maximum(self.income[borrower], 1.0)
        k = self.unpaid[idx]
        hazard = true_hazard(pti, self.shock[borrower], k, self.seg[idx], p)
        missed = rng.random(idx.size) < hazard
        self.truth.add(
            loan=idx, month=np.full(idx.size, m, dtype=np.int64), due_date=due, pti=pti,
            shock=self.shock[borrower], unpaid=k, hazard=hazard, missed=missed,
        )  # fmt: skip

        mi = idx[missed]
        self.arrears[mi] += amount[missed]
        late_fee = half_even_div(amount[missed] * self.fee_rate_bp, 10_000)
        self.fees[mi] += np.minimum(late_fee, self.fee_cap)
        self.unpaid[mi] += 1
        charged_off = mi[self.unpaid[mi] * months[mi] >= p.default_after_months]
        self.defaulted[charged_off] = True
        self.live[charged_off] = False

        paid = ~missed
        pi = idx[paid]
        received = amount[paid].copy()
        cure = (self.unpaid[pi] > 0) & (rng.random(pi.size) < p.cure_probability)
        received += np.where(cure, self.arrears[pi] + self.fees[pi], 0)
        ci = pi[cure]
        self.arrears[ci] = 0
        self.fees[ci] = 0
        self.unpaid[ci] = 0
        self.cures[ci] += 1
        # Early repayment: only a current loan, and not on its last installment.
        early = (
            (self.unpaid[pi] == 0) & ~last[paid] & (rng.random(pi.size) < p.prepayment_probability)
        )
        received += np.where(early, self.balance[pi], 0)
        ei = pi[early]
        self.balance[ei] = 0
        self.balance_asof[ei] = 0
        self.scheduled[ei] = False
        self.live[ei] = False
        self.prepaid[ei] = True
        lag = np.minimum(rng.geometric(0.6, pi.size) - 1, 5)
        pay_date = np.minimum(due[paid] + lag, self.as_of)
        self.pays.add(
            loan=pi, payment_date=pay_date, amount=received, due_date=due[paid],
            number=self.paid_through[pi],
        )  # fmt: skip

        eligible = (
            self.live[idx]
            & (self.unpaid[idx] >= p.restructure_min_arrears)
            & (self.restructures[idx] < p.max_restructures)
        )
        chosen = eligible & (rng.random(idx.size) < p.restructure_probability)
        if chosen.any():
            self._restructure(idx[chosen], due[chosen])

    def _restructure(self, ri: np.ndarray, on: np.ndarray) -> None:
        """Capitalise arrears, waive fees, extend the term and re-compute the installment."""
        months = self.ln.months[ri]
        self.balance[ri] += self.arrears[ri]
        self.balance_asof[ri] = self.balance[ri]
        self.arrears[ri] = 0
        self.fees[ri] = 0
        self.unpaid[ri] = 0
        self.periods[ri] += np.maximum(round(self.p.restructure_extension_months) // months, 1)
        left = self.periods[ri] - self.paid_through[ri]
        self.installment[ri] = annuity_payment(self.balance[ri], self.ln.rate_e4[ri], months, left)
        self.scheduled[ri] = True
        self.restructures[ri] += 1
        self.last_restructure[ri] = on

    def _state_at_as_of(self) -> dict[str, np.ndarray]:
        """Balances, days past due and status of every loan at as_of."""
        ln = self.ln
        # First in, first out: the unpaid installments are always the latest ``unpaid`` ones.
        oldest_no = np.maximum(self.last_due_no - self.unpaid + 1, 1)
        oldest_due = day_in_month(
            month_index(ln.origination) + oldest_no * ln.months, ln.anchor_day
        )
        dpd = np.where(self.unpaid > 0, (self.as_of - oldest_due).astype(np.int64), 0)
        matured_paid = ~self.scheduled & (self.balance_asof == 0) & (self.unpaid == 0)
        closed = self.prepaid | (matured_paid & ~self.defaulted)
        defaulted = self.defaulted | (~closed & (dpd >= 180))
        # Interest accrued since the last due date, actual/365 (overflow-safe for demo sizes).
        days = (self.as_of - self.last_due_date).astype(np.int64)
        accrued = half_even_div(self.balance_asof * ln.rate_e4 * days, 365 * 1_000_000)
        status = np.full(ln.number.size, "active", dtype=object)
        status[self.restructures > 0] = "restructured"
        status[dpd > 0] = "delinquent"
        status[defaulted] = "defaulted"
        status[closed] = "closed"
        return {
            "outstanding": np.where(closed, 0, self.balance_asof),
            "accrued": np.where(closed, 0, accrued),
            "arrears": self.arrears,
            "fees": self.fees,
            "dpd": dpd,
            "status": status.astype(str),
            "closed": closed,
            "cures": self.cures,
            "restructures": self.restructures,
            "last_restructure": self.last_restructure,
            "regular_payment": np.where(closed, 0, self.installment),
            "remaining": np.where(closed, 0, self.remaining),
            "next_due": np.where(closed, _NAT, self.next_due),
        }

    def _hardship(self, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Hardship requests open at as_of: most borrowers in a shock ask, and some delinquent
        borrowers without one (seasonal shortfalls, other reasons)."""
        rng, p, b = self.rng, self.p, self.ln.borrower
        open_loan = ~state["closed"] & (state["status"] != "defaulted")
        in_shock = open_loan & self.shock[b] & (rng.random(b.size) < 0.6)
        other = open_loan & ~self.shock[b] & (state["dpd"] > 0) & (rng.random(b.size) < 0.2)
        idx = np.flatnonzero(in_shock | other)
        shocked = in_shock[idx]
        seasonal = self.bor.segment[b[idx]] == _SEASONAL_SEGMENT
        reason = np.where(shocked, self.cause[b[idx]], np.where(seasonal, _SEASONAL, _OTHER))
        months_left = np.where(
            shocked,
            rng.geometric(1.0 / p.shock_mean_months, idx.size),
            rng.integers(1, 5, idx.size),
        )
        status = rng.choice(np.array(["open", "approved", "declined"]), idx.size, p=[0.7, 0.2, 0.1])
        return {
            "loan": idx,
            "requested_on": self.as_of - rng.integers(0, 46, idx.size),
            "reason": reason,
            "expected_recovery": self.as_of + months_left * 30 + rng.integers(-10, 11, idx.size),
            "income_factor": np.where(shocked, p.shock_income_factor, 0.8),
            "status": status,
        }
