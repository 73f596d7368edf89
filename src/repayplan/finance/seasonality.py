"""The one rule for income seasonality factors, shared by ``repayplan import`` (in SQL) and
:class:`repayplan.plans.case.LoanCase` (``repayplan quote`` and every planned loan).

Twelve multiplicative factors of the usual monthly income, January first: each finite and
non-negative, and averaging 1 within :data:`MEAN_TOLERANCE` — factors averaging 1.06 would
state 6 % more income over the year than the borrower declared.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: Largest distance of the factors' mean from 1.
MEAN_TOLERANCE = 0.1
#: What is wrong, in the words both checks use.
RULE = "needs 12 non-negative monthly factors (Jan..Dec) averaging 1"


def seasonality_problem(factors: Sequence[float]) -> str | None:
    """Why ``factors`` break the rule (``None`` when they do not)."""
    if len(factors) != 12:
        return f"{RULE}; got {len(factors)} factor(s)"
    try:
        values = [float(f) for f in factors]
    except (TypeError, ValueError):
        return f"{RULE}; not all are numbers"
    if not all(math.isfinite(v) for v in values):
        return f"{RULE}; not all are finite numbers"
    if min(values) < 0:
        return f"{RULE}; got a negative factor {min(values):g}"
    mean = sum(values) / 12
    if abs(mean - 1) > MEAN_TOLERANCE:
        return f"{RULE}; they average {mean:.4g}"
    return None
