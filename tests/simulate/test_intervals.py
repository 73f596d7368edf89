"""Paired bootstrap intervals: they shrink as paths grow, and pairing (common random numbers
across policies) makes a difference's interval narrower than its two estimates' together."""

from __future__ import annotations

from repayplan.simulate import simulate


def _width(row: dict) -> float:
    return row["ci_high"] - row["ci_low"]


def test_paired_difference_intervals_shrink_with_paths(fitted_book):
    reports = {
        paths: simulate(
            fitted_book,
            ["contract", "waterfall"],
            loans="triggered",
            sample=300,
            paths=paths,
            horizons=(12,),
            seed=2,
            write=False,
        )
        for paths in (25, 200)
    }
    widths = {
        p: _width(r.estimate("waterfall", "charge_off", 12, versus="contract"))
        for p, r in reports.items()
    }
    # 8× the paths: about 1/√8 ≈ 0.35 of the width; allow bootstrap noise.
    assert 0 < widths[200] < 0.6 * widths[25], widths

    report = reports[200]
    diff = report.estimate("waterfall", "charge_off", 12, versus="contract")
    alone = [report.estimate(p, "charge_off", 12) for p in ("waterfall", "contract")]
    assert _width(diff) < sum(_width(r) for r in alone)
    # The difference's point estimate is the difference of the policies' own estimates.
    assert abs(diff["estimate"] - (alone[0]["estimate"] - alone[1]["estimate"])) < 1e-9
