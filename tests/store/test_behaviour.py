from __future__ import annotations

import duckdb
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from repayplan.store.behaviour import BehaviourParams, true_hazard
from repayplan.store.schema import SEGMENTS


@settings(max_examples=100, deadline=None)
@given(st.floats(0.0, 0.8), st.floats(0.01, 0.2), st.integers(0, 3), st.integers(0, 3))
def test_hazard_rises_with_burden_and_shocks(pti, step, segment, arrears):
    low = true_hazard(pti, False, arrears, segment)
    assert true_hazard(pti + step, False, arrears, segment) >= low
    assert true_hazard(pti, True, arrears, segment) > low or low == BehaviourParams().max_hazard


def test_burden_effect_is_in_the_published_range_and_convex():
    pti = np.linspace(0.05, 0.45, 41)
    h = true_hazard(pti, False, 0, 0)
    ratio_per_10_points = h[10:] / h[:-10]
    assert ((ratio_per_10_points > 1.3) & (ratio_per_10_points < 1.6)).all()
    assert (np.diff(h, 2) > 0).all()


def test_truth_tables_match_the_model(demo_db):
    db, _ = demo_db
    con = duckdb.connect(str(db), read_only=True)
    stored = dict(con.execute("SELECT parameter, value FROM behaviour_truth").fetchall())
    assert stored == {name: value for name, value, _ in BehaviourParams().rows()}
    t = con.execute(
        "SELECT t.payment_to_income, t.shock, t.arrears_installments, t.true_hazard, t.missed, "
        "list_position(?, b.segment::VARCHAR) - 1 AS seg FROM loan_month_truth t "
        "JOIN loans l USING (loan_id) JOIN borrowers b USING (borrower_id)",
        [list(SEGMENTS)],
    ).fetchnumpy()
    con.close()
    recomputed = true_hazard(
        t["payment_to_income"], t["shock"], t["arrears_installments"], t["seg"]
    )
    np.testing.assert_allclose(recomputed, t["true_hazard"], rtol=1e-12)
    # Calibration: misses happen at the stated rate, overall and among the burdened.
    n = t["missed"].size
    assert abs(t["missed"].mean() - t["true_hazard"].mean()) < 4 * np.sqrt(
        t["true_hazard"].mean() / n
    )
    high = t["payment_to_income"] > np.quantile(t["payment_to_income"], 0.9)
    current = t["arrears_installments"] == 0
    assert t["missed"][high & current].mean() > t["missed"][~high & current].mean()
    assert t["missed"][t["shock"] & current].mean() > t["missed"][~t["shock"] & current].mean()
