"""From simulated paths to the figures a risk team reads, with paired bootstrap intervals.

Each path is one possible future of the whole book, so the unit of resampling is the path:
a figure is the mean over paths of a book-level quantity (the share of loans charged off by
month 12, Σ NPV ÷ Σ exposure …), and its 95 % interval the 2.5–97.5 percentiles of that mean
over bootstrap resamples of the paths. Every policy is resampled with the *same* path
indices, so a difference between two policies (``versus``) is a paired estimate whose
interval shrinks like 1/√paths. Relative cuts (``charge_off_cut``: 1 − policy ÷ baseline)
come from the same resamples.

Metrics (fractions): ``charge_off`` and ``dpd90`` (ever 90+ days past due, charge-offs
included) within each horizon; ``cure_rate`` (loans past due at the start that are current
or repaid at month 12); ``lender_npv`` (expected NPV at the hurdle with recoveries ÷
exposure), ``borrower_paid`` (cash paid, and still scheduled for loans current at the
valuation horizon, ÷ exposure) and ``concession`` (NPV given up by the plans at the hurdle ÷
exposure), at the valuation horizon.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from repayplan.simulate.book import Book
from repayplan.simulate.engine import PathOutcomes, PlanSet
from repayplan.store.schema import SEGMENTS

BOOTSTRAP = 1000
METRICS = ("charge_off", "dpd90", "cure_rate", "lender_npv", "borrower_paid", "concession")


@dataclass
class PathMetrics:
    """Book-level figures per path: ``values[(segment, metric, horizon)]`` is a (paths,)
    array."""

    values: dict[tuple[str, str, int], np.ndarray]


def path_metrics(
    book: Book, plans: PlanSet, out: PathOutcomes, horizons: tuple[int, ...], value_months: int
) -> PathMetrics:
    """The per-path figures of one policy, for the whole book (``all``) and each segment."""
    names = book.segment_names()
    values: dict[tuple[str, str, int], np.ndarray] = {}
    delinquent = book.unpaid > 0
    groups = [("all", np.ones(book.size, dtype=bool))]
    groups += [(s, names == s) for s in SEGMENTS if (names == s).any()]
    for segment, mask in groups:
        n = int(mask.sum())
        exposure = float(book.exposure[mask].sum())
        for h in horizons:
            c = out.charge_month[mask]
            values[(segment, "charge_off", h)] = ((c > 0) & (c <= h)).sum(axis=0) / n
            s = out.serious_month[mask]
            values[(segment, "dpd90", h)] = ((s > 0) & (s <= h)).sum(axis=0) / n
        late = mask & delinquent
        if late.any():
            values[(segment, "cure_rate", 12)] = out.current_12[late].mean(axis=0)
        values[(segment, "lender_npv", value_months)] = out.npv[mask].sum(axis=0) / exposure
        values[(segment, "borrower_paid", value_months)] = out.paid[mask].sum(axis=0) / exposure
        concession = float(plans.concession[mask].sum()) / exposure
        values[(segment, "concession", value_months)] = np.full(out.npv.shape[1], concession)
    return PathMetrics(values)


def resample_indices(paths: int, seed: int, draws: int = BOOTSTRAP) -> np.ndarray:
    """(draws, paths) bootstrap path indices, shared by every policy of a simulation."""
    return np.random.default_rng([seed, 4242]).integers(0, paths, size=(draws, paths))


def _interval(boot: np.ndarray) -> tuple[float, float]:
    lo, hi = np.nanpercentile(boot, [2.5, 97.5])
    return float(lo), float(hi)


def result_rows(
    metrics: dict[str, PathMetrics],
    idx: np.ndarray,
    baselines: tuple[str, ...],
    budget: dict[str, float | None] | None = None,
) -> list[dict[str, object]]:
    """Rows of ``simulation_results``: every policy's levels, and its paired differences
    and relative charge-off cuts against each baseline present."""
    rows: list[dict[str, object]] = []
    budget = budget or {}
    for policy, pm in metrics.items():
        for (segment, metric, h), x in pm.values.items():
            boot = x[idx].mean(axis=1)
            lo, hi = _interval(boot)
            rows.append(
                dict(policy=policy, concession_budget=budget.get(policy), segment=segment,
                     metric=metric, horizon_months=h, estimate=float(x.mean()), ci_low=lo,
                     ci_high=hi, versus=None)
            )  # fmt: skip
            for base in baselines:
                if base == policy or base not in metrics:
                    continue
                y = metrics[base].values.get((segment, metric, h))
                if y is None:
                    continue
                d = x - y
                lo, hi = _interval(d[idx].mean(axis=1))
                rows.append(
                    dict(policy=policy, concession_budget=budget.get(policy), segment=segment,
                         metric=metric, horizon_months=h, estimate=float(d.mean()), ci_low=lo,
                         ci_high=hi, versus=base)
                )  # fmt: skip
                if metric == "charge_off" and float(y.mean()) > 0:
                    with np.errstate(divide="ignore", invalid="ignore"):
                        cut = 1.0 - x[idx].mean(axis=1) / y[idx].mean(axis=1)
                    lo, hi = _interval(cut)
                    rows.append(
                        dict(policy=policy, concession_budget=budget.get(policy),
                             segment=segment, metric="charge_off_cut", horizon_months=h,
                             estimate=1.0 - float(x.mean()) / float(y.mean()), ci_low=lo,
                             ci_high=hi, versus=base)
                    )  # fmt: skip
    return rows
