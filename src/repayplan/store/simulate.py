"""Month-by-month simulation of a chunk of demo loans under the behavioural model.

One loop over calendar months (never over loans): up to ``as_of`` each due installment is paid
or missed as :mod:`repayplan.store.behaviour` says, with cures, late fees, restructures,
prepayments and charge-offs; after ``as_of`` the contract in force is projected to maturity.
The result holds the flattened rows of every table the demo writes (money in cents).
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
# Shock causes per segment: job_loss, illness, business_downturn, seasonal, other.
_CAUSE_MIX = np.array(
    [
        [0.60, 0.30, 0.00, 0.00, 0.10],
        [0.00, 0.25, 0.60, 0.00, 0.15],
        [0.50, 0.20, 0.20, 0.00, 0.10],
        [0.00, 0.20, 0.10, 0.60, 0.10],
    ]
)


class _Rows:
    """Columns gathered per month and concatenated once."""

    def __init__(self, *names: str):
        self.parts: dict[str, list[np.ndarray]] = {n: [] for n in names}

    def add(self, **cols: np.ndarray) -> None:
        for name, col in cols.items():
            self.parts[name].append(col)

    def arrays(self) -> dict[str, np.ndarray]:
        return {n: np.concatenate(v) if v else np.empty(0) for n, v in self.parts.items()}


@dataclass
class Simulation:
    """Everything simulated for one chunk. Loan-level arrays are indexed like the chunk's
    :class:`Loans`; row tables are dicts of equal-length arrays."""

    loans: dict[str, np.ndarray]
    contract: dict[str, np.ndarray]
    payments: dict[str, np.ndarray]
    truth: dict[str, np.ndarray]
    income: dict[str, np.ndarray]
    hardship: dict[str, np.ndarray] = field(default_factory=dict)


def simulate(
    rng: np.random.Generator,
    bor: Borrowers,
    ln: Loans,
    as_of: date,
    params: BehaviourParams,
) -> Simulation:
    """Simulate the chunk's history up to ``as_of`` and project its contracts beyond."""
    n = ln.number.size
    as_of_d = np.datetime64(as_of, "D")
    as_of_m = int(month_index(np.array([as_of_d]))[0])
    b_of = ln.borrower
    seg = bor.segment[b_of]
    f = ln.months
    orig_m = month_index(ln.origination)
    rate = ln.rate_e4

    n_total = ln.periods.copy()
    balance = ln.principal.copy()
    payment_reg = annuity_payment(balance, rate, f, n_total)
    inst_no = np.zeros(n, dtype=np.int64)
    scheduled = np.ones(n, dtype=bool)  # contract installments still to come
    live = np.ones(n, dtype=bool)  # still behaving: not defaulted, not closed early
    defaulted = np.zeros(n, dtype=bool)
    prepaid = np.zeros(n, dtype=bool)
    balance_asof = balance.copy()
    arrears = np.zeros(n, dtype=np.int64)
    fees = np.zeros(n, dtype=np.int64)
    unpaid = np.zeros(n, dtype=np.int64)
    cures = np.zeros(n, dtype=np.int64)
    restructures = np.zeros(n, dtype=np.int64)
    last_restructure = np.full(n, _NAT)
    last_due_no = np.zeros(n, dtype=np.int64)
    last_due_date = ln.origination.copy()
    next_due = np.full(n, _NAT)
    remaining = np.zeros(n, dtype=np.int64)

    fee_cap = round(params.late_fee_cap * 100)
    fee_rate_bp = round(params.late_fee_rate * 10_000)
    default_months = params.default_after_months

    nb = bor.segment.size
    onset = params.shock_onset()[bor.segment]
    stationary = onset / (onset + 1.0 / params.shock_mean_months)
    shock = rng.random(nb) < stationary
    cause = np.full(nb, 4, dtype=np.int64)
    base_income = bor.income.astype(np.float64)

    contract = _Rows("loan", "number", "due_date", "payment", "principal", "interest", "balance")
    pays = _Rows("loan", "payment_date", "amount", "due_date", "number")
    truth = _Rows("loan", "month", "due_date", "pti", "shock", "unpaid", "hazard", "missed")
    incomes = _Rows("borrower", "month", "income")

    m = int(orig_m.min()) + 1
    income_m = base_income
    while scheduled.any() or m <= as_of_m:
        past_month = m <= as_of_m
        if past_month:
            shock, started = step_shocks(shock, bor.segment, rng.random(nb), params)
            if started.any():
                mix = np.cumsum(_CAUSE_MIX[bor.segment[started]], axis=1)
                cause[started] = (rng.random((int(started.sum()), 1)) > mix).sum(axis=1)
            cal = (m % 12 + 12) % 12  # months since 1970-01 → Jan = 0
            income_m = monthly_income(
                base_income,
                bor.season[:, cal],
                bor.volatility,
                shock,
                rng.standard_normal(nb),
                params,
            )
            if as_of_m - 12 <= m < as_of_m:
                incomes.add(
                    borrower=np.arange(nb),
                    month=np.full(nb, m, dtype=np.int64),
                    income=np.rint(income_m).astype(np.int64),
                )
        elapsed = m - orig_m
        idx = np.flatnonzero(scheduled & (elapsed > 0) & (elapsed % f == 0))
        if idx.size:
            kno = inst_no[idx] + 1
            bal = balance[idx]
            interest = period_interest(bal, rate[idx], f[idx])
            last = kno >= n_total[idx]
            principal = np.where(last, bal, np.clip(payment_reg[idx] - interest, 0, bal))
            due_amt = principal + interest
            due = day_in_month(np.full(idx.size, m), ln.anchor_day[idx])
            balance[idx] = bal - principal
            inst_no[idx] = kno
            scheduled[idx] = ~last
            contract.add(
                loan=idx, number=kno, due_date=due, payment=due_amt, principal=principal,
                interest=interest, balance=balance[idx],
            )  # fmt: skip
            past = due <= as_of_d
            fut = idx[~past]
            first_fut = fut[np.isnat(next_due[fut])]
            next_due[first_fut] = due[~past][np.isnat(next_due[fut])]
            remaining[fut] += 1
            pidx = idx[past]
            balance_asof[pidx] = balance[pidx]
            last_due_no[pidx] = kno[past]
            last_due_date[pidx] = due[past]
            act = past & live[idx]
            if act.any():
                _behave(
                    rng, params, idx[act], m, due[act], due_amt[act], last[act], income_m, shock,
                    b_of, seg, f, rate, arrears, fees, unpaid, cures, restructures,
                    last_restructure, balance, balance_asof, n_total, inst_no, payment_reg,
                    scheduled, live, defaulted, prepaid, fee_cap, fee_rate_bp, default_months,
                    as_of_d, pays, truth,
                )  # fmt: skip
        m += 1

    state = _state_at(
        ln, as_of_d, balance_asof, arrears, fees, unpaid, live, defaulted, prepaid, scheduled,
        last_due_no, last_due_date, rate, restructures,
    )  # fmt: skip
    state.update(
        arrears=arrears, fees=fees, cures=cures, restructures=restructures,
        last_restructure=last_restructure,
        regular_payment=np.where(state["closed"], 0, payment_reg),
        remaining=np.where(state["closed"], 0, remaining),
        next_due=np.where(state["closed"], _NAT, next_due),
    )  # fmt: skip
    hardship = _hardship(rng, params, bor, ln, state, shock, cause, as_of_d)
    return Simulation(
        loans=state,
        contract=contract.arrays(),
        payments=pays.arrays(),
        truth=truth.arrays(),
        income=incomes.arrays(),
        hardship=hardship,
    )


def _behave(
    rng, params, idx, m, due, due_amt, last, income_m, shock, b_of, seg, f, rate, arrears, fees,
    unpaid, cures, restructures, last_restructure, balance, balance_asof, n_total, inst_no,
    payment_reg, scheduled, live, defaulted, prepaid, fee_cap, fee_rate_bp, default_months,
    as_of_d, pays, truth,
) -> None:  # fmt: skip
    """Pay or miss the installments ``due_amt`` of loans ``idx`` due on ``due`` (in place)."""
    bi = b_of[idx]
    pti = due_amt / f[idx] / np.maximum(income_m[bi], 1.0)
    k = unpaid[idx]
    hazard = true_hazard(pti, shock[bi], k, seg[idx], params)
    missed = rng.random(idx.size) < hazard
    truth.add(
        loan=idx, month=np.full(idx.size, m, dtype=np.int64), due_date=due, pti=pti,
        shock=shock[bi], unpaid=k, hazard=hazard, missed=missed,
    )  # fmt: skip

    mi = idx[missed]
    arrears[mi] += due_amt[missed]
    fees[mi] += np.minimum(half_even_div(due_amt[missed] * fee_rate_bp, 10_000), fee_cap)
    unpaid[mi] += 1
    charged_off = mi[unpaid[mi] * f[mi] >= default_months]
    defaulted[charged_off] = True
    live[charged_off] = False

    paid = ~missed
    pi = idx[paid]
    amount = due_amt[paid].copy()
    cure = (unpaid[pi] > 0) & (rng.random(pi.size) < params.cure_probability)
    amount += np.where(cure, arrears[pi] + fees[pi], 0)
    ci = pi[cure]
    arrears[ci] = 0
    fees[ci] = 0
    unpaid[ci] = 0
    cures[ci] += 1
    # Early repayment: only a current loan, and not on its last installment.
    early = (unpaid[pi] == 0) & ~last[paid] & (rng.random(pi.size) < params.prepayment_probability)
    amount += np.where(early, balance[pi], 0)
    ei = pi[early]
    balance[ei] = 0
    balance_asof[ei] = 0
    scheduled[ei] = False
    live[ei] = False
    prepaid[ei] = True
    lag = np.minimum(rng.geometric(0.6, pi.size) - 1, 5)
    pay_date = np.minimum(due[paid] + lag, as_of_d)
    pays.add(loan=pi, payment_date=pay_date, amount=amount, due_date=due[paid], number=inst_no[pi])

    eligible = (
        live[idx]
        & (unpaid[idx] >= params.restructure_min_arrears)
        & (restructures[idx] < params.max_restructures)
    )
    chosen = eligible & (rng.random(idx.size) < params.restructure_probability)
    ri = idx[chosen]
    if ri.size:
        balance[ri] += arrears[ri]
        balance_asof[ri] = balance[ri]
        arrears[ri] = 0
        fees[ri] = 0
        unpaid[ri] = 0
        n_total[ri] += np.maximum(round(params.restructure_extension_months) // f[ri], 1)
        payment_reg[ri] = annuity_payment(balance[ri], rate[ri], f[ri], n_total[ri] - inst_no[ri])
        scheduled[ri] = True
        restructures[ri] += 1
        last_restructure[ri] = due[chosen]


def _state_at(
    ln, as_of_d, balance_asof, arrears, fees, unpaid, live, defaulted, prepaid, scheduled,
    last_due_no, last_due_date, rate, restructures,
) -> dict[str, np.ndarray]:  # fmt: skip
    """Balances, days past due and status at ``as_of``."""
    n = ln.number.size
    # First in, first out: the unpaid installments are always the latest ``unpaid`` ones.
    oldest_no = np.maximum(last_due_no - unpaid + 1, 1)
    oldest_due = day_in_month(month_index(ln.origination) + oldest_no * ln.months, ln.anchor_day)
    dpd = np.where(unpaid > 0, (as_of_d - oldest_due).astype(np.int64), 0)
    matured_paid = ~scheduled & (balance_asof == 0) & (unpaid == 0)
    closed = prepaid | (matured_paid & ~defaulted)
    defaulted = defaulted | (~closed & (dpd >= 180))
    days = (as_of_d - last_due_date).astype(np.int64)
    accrued = np.where(closed, 0, half_even_div(balance_asof * rate * days, 365 * 1_000_000))
    status = np.full(n, "active", dtype=object)
    status[restructures > 0] = "restructured"
    status[dpd > 0] = "delinquent"
    status[defaulted] = "defaulted"
    status[closed] = "closed"
    return {
        "outstanding": np.where(closed, 0, balance_asof),
        "accrued": accrued,
        "dpd": dpd,
        "status": status.astype(str),
        "closed": closed,
        "live": live,
    }


def _hardship(rng, params, bor, ln, state, shock, cause, as_of_d) -> dict[str, np.ndarray]:
    """Hardship requests open at ``as_of``: most borrowers in a shock ask, and some delinquent
    borrowers without one (seasonal shortfalls, other reasons)."""
    b = ln.borrower
    open_loan = ~state["closed"] & ~(state["status"] == "defaulted")
    in_shock = open_loan & shock[b] & (rng.random(b.size) < 0.6)
    other = open_loan & ~shock[b] & (state["dpd"] > 0) & (rng.random(b.size) < 0.2)
    idx = np.flatnonzero(in_shock | other)
    seasonal = bor.segment[b[idx]] == 3
    reason = np.where(in_shock[idx], cause[b[idx]], np.where(seasonal, 3, 4))
    months_left = np.where(
        in_shock[idx],
        rng.geometric(1.0 / params.shock_mean_months, idx.size),
        rng.integers(1, 5, idx.size),
    )
    requested = as_of_d - rng.integers(0, 46, idx.size)
    recovery = as_of_d + months_left * 30 + rng.integers(-10, 11, idx.size)
    status = rng.choice(np.array(["open", "approved", "declined"]), idx.size, p=[0.7, 0.2, 0.1])
    return {
        "loan": idx,
        "requested_on": requested,
        "reason": reason,
        "expected_recovery": recovery,
        "income_factor": np.where(in_shock[idx], params.shock_income_factor, 0.8),
        "status": status,
    }
