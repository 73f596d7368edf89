"""The selection stores each limit's multiplier: the LP relaxation's shadow price."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from repayplan.portfolio.limits import PortfolioLimits
from repayplan.portfolio.selection import select_plans

from .test_selection import random_candidates


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_budget_multiplier_is_the_lp_shadow_price(seed):
    rng = np.random.default_rng(seed)
    frame = random_candidates(rng, 40)
    budget = float(np.round(0.2 * frame["concession"].sum(), 2))
    selection = select_plans(frame, PortfolioLimits(concession_budget=budget), method="lagrangian")
    stored = selection.stats["limits"]["concession budget"]
    assert stored["limit"] == budget and stored["relaxed_to"] == budget
    # The LP relaxation solved directly: max value·x, concession·x ≤ budget, Σ_k x = 1.
    codes = frame["loan_id"].factorize()[0]
    one = sp.csr_array((np.ones(len(frame)), (codes, np.arange(len(frame)))))
    lp = linprog(
        -frame["value"].to_numpy(),
        A_ub=frame["concession"].to_numpy()[None, :],
        b_ub=[budget],
        A_eq=one,
        b_eq=np.ones(one.shape[0]),
        bounds=(0, 1),
        method="highs",
    )
    assert lp.status == 0
    shadow = -lp.ineqlin.marginals[0]
    assert shadow > 0  # the budget binds at 20 % of all concession on offer
    assert stored["price"] == pytest.approx(shadow, rel=1e-3, abs=1e-6)
    assert selection.bound == pytest.approx(-lp.fun, rel=1e-6)


def test_slack_limits_have_no_price():
    rng = np.random.default_rng(4)
    frame = random_candidates(rng, 30)
    limits = PortfolioLimits(concession_budget=1e9, review_capacity=10_000)
    stats = select_plans(frame, limits).stats["limits"]
    assert stats["concession budget"]["price"] == 0.0
    assert stats["review capacity"]["price"] == 0.0
