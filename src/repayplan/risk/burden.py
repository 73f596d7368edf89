"""The payment-burden response curve g: how the default hazard moves with payment-to-income.

The hazard in a period is ``base_hazard × g(payment / income)``. ``g`` is convex and
increasing and given as piecewise-linear breakpoints, so an LP can carry it as the maximum
of affine pieces (an epigraph). ``risk`` fits the curve from the portfolio's history; until
a fitted curve exists, :data:`DEFAULT_BURDEN_CURVE` is used (see its ``source``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class BurdenCurve:
    """Piecewise-linear convex increasing factor ``g(ratio)``.

    ``ratios`` are payment-to-income ratios (fractions, strictly increasing, first 0);
    ``factors`` the hazard multiplier at each ratio (dimensionless, 1.0 at the reference
    ratio). Past the last breakpoint the last slope continues.
    """

    ratios: tuple[float, ...]
    factors: tuple[float, ...]
    source: str = ""

    def __post_init__(self) -> None:
        r = np.asarray(self.ratios, dtype=float)
        f = np.asarray(self.factors, dtype=float)
        if r.ndim != 1 or r.shape != f.shape or r.size < 2:
            raise ValueError("burden curve: ratios and factors must be equal-length, >= 2 points")
        if r[0] != 0.0 or np.any(np.diff(r) <= 0):
            raise ValueError("burden curve: ratios must start at 0 and strictly increase")
        slopes = np.diff(f) / np.diff(r)
        if np.any(f <= 0) or np.any(slopes < -1e-12):
            raise ValueError("burden curve: factors must be positive and non-decreasing")
        if np.any(np.diff(slopes) < -1e-9):
            raise ValueError("burden curve: must be convex (slopes non-decreasing)")

    def __call__(self, ratio: Any) -> np.ndarray:
        """Hazard factor at ``ratio`` (array-like of payment-to-income fractions)."""
        x = np.asarray(ratio, dtype=float)
        slopes, intercepts = self.pieces()
        return np.max(slopes[:, None] * x.reshape(1, -1) + intercepts[:, None], axis=0).reshape(
            x.shape
        )

    def pieces(self) -> tuple[np.ndarray, np.ndarray]:
        """Affine pieces ``(slopes, intercepts)``; ``g(x) = max_k slopes[k]·x + intercepts[k]``
        for x ≥ 0 (convexity makes the maximum equal the interpolation)."""
        r = np.asarray(self.ratios, dtype=float)
        f = np.asarray(self.factors, dtype=float)
        slopes = np.diff(f) / np.diff(r)
        intercepts = f[:-1] - slopes * r[:-1]
        return slopes, intercepts

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{"ratios": [...], "factors": [...], "source": str}``."""
        return {"ratios": list(self.ratios), "factors": list(self.factors), "source": self.source}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BurdenCurve:
        """Inverse of :meth:`to_dict`."""
        return cls(tuple(data["ratios"]), tuple(data["factors"]), data.get("source", ""))


def _exponential_curve(beta: float, reference: float, ratios: tuple[float, ...]) -> BurdenCurve:
    factors = tuple(round(math.exp(beta * (x - reference)), 6) for x in ratios)
    return BurdenCurve(
        ratios,
        factors,
        source=f"default: exp({beta}·(ratio − {reference})) sampled at breakpoints",
    )


#: Used until a curve fitted from the portfolio is stored. A payment-to-income ratio 10
#: points higher multiplies the hazard by e^0.35 ≈ 1.42; the risk layer checks this
#: against published re-default evidence.
DEFAULT_BURDEN_CURVE = _exponential_curve(
    3.5, 0.30, (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.25, 1.5)
)
