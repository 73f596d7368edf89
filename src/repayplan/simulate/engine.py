"""Forward Monte Carlo of one policy's plans: month by month, every loan on every path at once.

Per (loan, path) the state is the installments unpaid ``k``, their amount (with late fees),
the month of the oldest unpaid installment, and whether the loan is still open. In month
``m`` (1 = the month after ``as_of``) the behaviour model gives each borrower's income; each
installment due that month is missed with the model's probability at its payment-to-income
``(installment ÷ months per period) ÷ income``. A miss adds the installment and a late fee to
the arrears; charge-off when the unpaid installments cover
:data:`~repayplan.risk.miss_model.CHARGE_OFF_MONTHS` months (or, once nothing more falls due,
when the oldest unpaid installment is that many months old). A payment by a delinquent
borrower clears all arrears with the cure probability (first in, first out otherwise); a
current borrower repays early with the prepayment probability. The lender's NPV counts the
cash received and, at charge-off, ``1 − LGD`` of what is owed, discounted at the hurdle rate
(monthly); loans open at the valuation horizon add their remaining scheduled payments (when
current) or the recovery on what they owe (when delinquent).

The random numbers depend on the seed and the month only (:func:`month_draws`), so every
policy meets the same incomes, shocks and coin flips: differences between policies are
paired. Money in cents (float), months as integers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from repayplan.risk.miss_model import CHARGE_OFF_MONTHS, SERIOUS_MONTHS
from repayplan.simulate.behaviour import FittedBehaviour, TruthBehaviour, month_draws
from repayplan.simulate.book import Book


@dataclass
class PlanSet:
    """One policy's plan for every loan of a book, on the simulation's month grid.

    ``pay`` / ``owed``: (loans, months) cents due in each month and what is owed just before
    that payment; ``months``: months per period; ``unpaid0`` / ``arrears0``: installments and
    cents past due when the plan starts (0 for a restructure); ``oldest0``: the month (≤ 0)
    the oldest of them fell due, from the days past due; ``last_month``: month of the
    last installment; ``tail_pv`` / ``tail_paid`` / ``owed_end``: payments after the horizon
    (valued at the horizon, at the hurdle), their sum, and what is owed after the horizon's
    last payment; ``concession``: what the plan gives up at the hurdle (cents, ≥ 0);
    ``restructured``: the plan changes the contract; ``names``: the alternative per loan.
    """

    pay: np.ndarray
    owed: np.ndarray
    months: np.ndarray
    unpaid0: np.ndarray
    arrears0: np.ndarray
    oldest0: np.ndarray
    last_month: np.ndarray
    tail_pv: np.ndarray
    tail_paid: np.ndarray
    owed_end: np.ndarray
    concession: np.ndarray
    restructured: np.ndarray
    names: np.ndarray


@dataclass
class PathOutcomes:
    """Per (loan, path): ``charge_month`` / ``serious_month`` (first month charged off / 90+
    days past due, 0 = never within the horizon), ``current_12`` (open or repaid, nothing
    past due at month 12), ``npv`` and ``paid`` (cents)."""

    charge_month: np.ndarray
    serious_month: np.ndarray
    current_12: np.ndarray
    npv: np.ndarray
    paid: np.ndarray


def run_paths(
    book: Book,
    plans: PlanSet,
    behaviour: TruthBehaviour | FittedBehaviour,
    *,
    paths: int,
    seed: int,
    lgd: float,
    hurdle_rate: float,
) -> PathOutcomes:
    """Simulate ``plans`` over ``paths`` paths for as many months as ``plans`` has columns."""
    n, horizon = plans.pay.shape
    nb = book.borrower_ids.size
    behaviour.start(book, paths)
    k = np.repeat(plans.unpaid0[:, None], paths, axis=1).astype(np.int64)
    arrears = np.repeat(plans.arrears0[:, None].astype(np.float64), paths, axis=1)
    oldest = np.repeat(plans.oldest0[:, None], paths, axis=1).astype(np.int64)
    alive = np.ones((n, paths), dtype=bool)
    prepaid = np.zeros((n, paths), dtype=bool)
    charge = np.zeros((n, paths), dtype=np.int16)
    serious = np.zeros((n, paths), dtype=np.int16)
    current_12 = np.zeros((n, paths), dtype=bool)
    npv = np.zeros((n, paths))
    paid_total = np.zeros((n, paths))
    months = plans.months[:, None]
    disc = 1.0 + hurdle_rate / 12.0
    recovery = 1.0 - lgd
    first_month = book.as_of.month  # calendar month (1-12) of as_of
    for m in range(1, horizon + 1):
        draws = month_draws(seed, m, nb, n, paths)
        income = behaviour.income(m, (first_month - 1 + m) % 12, draws)
        df = disc**-m
        rows = np.flatnonzero(plans.pay[:, m - 1] > 0)
        if rows.size:
            r_alive = alive[rows]
            amount = plans.pay[rows, m - 1][:, None]
            owed = plans.owed[rows, m - 1][:, None]
            r_k = k[rows]
            pti = amount / months[rows] / np.maximum(income[rows], 1.0)
            hazard = behaviour.miss_probability(rows, pti, r_k)
            missed = r_alive & (draws.miss[rows] < hazard)
            paid = r_alive & ~missed
            fee = np.minimum(np.rint(amount * behaviour.late_fee_rate), behaviour.late_fee_cap)
            r_arrears = arrears[rows] + np.where(missed, amount + fee, 0.0)
            r_oldest = np.where(missed & (r_k == 0), m, oldest[rows])
            r_k = r_k + missed
            charged = missed & (r_k * months[rows] >= CHARGE_OFF_MONTHS)
            cash = np.where(paid, amount, 0.0)
            cured = paid & (r_k > 0) & (draws.cure[rows] < behaviour.cure_probability)
            cash += np.where(cured, r_arrears, 0.0)
            r_arrears = np.where(cured, 0.0, r_arrears)
            stuck = paid & (r_k > 0) & ~cured
            r_oldest = np.where(stuck, r_oldest + months[rows], r_oldest)
            r_k = np.where(cured, 0, r_k)
            early = (
                paid
                & (r_k == 0)
                & (m < plans.last_month[rows])[:, None]
                & (draws.prepay[rows] < behaviour.prepayment_probability)
            )
            cash += np.where(early, owed - amount, 0.0)
            ead = owed - amount + r_arrears
            npv[rows] += (cash + np.where(charged, recovery * ead, 0.0)) * df
            paid_total[rows] += cash
            alive[rows] = r_alive & ~charged & ~early
            prepaid[rows] |= early
            charge[rows] = np.where(charged, m, charge[rows])
            k[rows], arrears[rows], oldest[rows] = r_k, r_arrears, r_oldest
        # Past the last installment nothing more falls due: arrears left open are charged
        # off once the oldest is CHARGE_OFF_MONTHS old (180 days past due).
        overdue = alive & (k > 0) & (m - oldest >= CHARGE_OFF_MONTHS)
        overdue &= (m > plans.last_month)[:, None]
        if overdue.any():
            npv += np.where(overdue, recovery * arrears * df, 0.0)
            alive &= ~overdue
            charge = np.where(overdue, m, charge).astype(np.int16)
        late = (k > 0) & ((k * months >= SERIOUS_MONTHS) | (m - oldest >= SERIOUS_MONTHS))
        late |= charge > 0
        serious = np.where((serious == 0) & late, m, serious).astype(np.int16)
        if m == 12:
            current_12 = (alive | prepaid) & (k == 0)
    if horizon < 12:
        current_12 = (alive | prepaid) & (k == 0)
    end = disc**-horizon
    good = alive & (k == 0)
    bad = alive & (k > 0)
    npv += np.where(good, plans.tail_pv[:, None] * end, 0.0)
    npv += np.where(bad, recovery * (plans.owed_end[:, None] + arrears) * end, 0.0)
    paid_total += np.where(good, plans.tail_paid[:, None], 0.0)
    return PathOutcomes(charge, serious, current_12, npv, paid_total)
