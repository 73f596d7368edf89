"""What every planning strategy returns: alternatives with cent-exact schedules, and a quote.

This is the contract between the optimiser templates, the baselines (contract, waterfall),
the CLI's ``quote``/``plan`` commands and the portfolio layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from repayplan.finance.schedule import Schedule


@dataclass(frozen=True)
class Alternative:
    """One complete plan offered to a borrower.

    Money is in integer cents; ``annual_rate`` is a fraction (0.0525 = 5.25 %).
    ``metrics`` holds the exact figures computed from ``schedule`` by ``risk`` and
    ``finance`` (total paid, APR, IRR rates, NPV, PD, expected loss, max payment-to-income,
    concession …) — never read off the LP proxy. ``objective`` is the optimum of the
    template's model (None for baselines that are not optimisations).
    """

    name: str
    schedule: Schedule
    annual_rate: Decimal
    metrics: dict[str, Any] = field(default_factory=dict)
    objective: float | None = None
    explanation: str = ""
    forborne_principal: int = 0
    frequency: str = "monthly"

    @property
    def term_periods(self) -> int:
        """Number of installments in the schedule."""
        return len(self.schedule.installments)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the ``repayplan quote --json`` alternative object)."""
        return {
            "name": self.name,
            "installments": self.schedule.to_dict()["installments"],
            "metrics": self.metrics,
            "objective": self.objective,
            "explanation": self.explanation,
            "annual_rate_percent": str((self.annual_rate * 100).normalize()),
            "term_periods": self.term_periods,
            "forborne_principal": str(Decimal(self.forborne_principal).scaleb(-2)),
            "frequency": self.frequency,
        }


@dataclass(frozen=True)
class Quote:
    """The answer to "what are my options": alternatives, or reasons why there are none.

    ``status`` is one of:

    - ``"ok"``: every template offered was solved as stated;
    - ``"relaxed"``: at least one needed a declared relaxation (longer term, rate cut,
      deeper concession); ``reasons`` say why and which;
    - ``"manual_review"``: nothing could be offered — ``reasons`` name the constraints that
      make each template impossible — or (from ``quote_many``) the loan's record or input
      is invalid, named with the field;
    - ``"error"``: (from ``quote_many`` only) planning this loan failed unexpectedly; no
      alternatives, ``reasons`` hold the loan id and the exception. The rest of the batch
      is unaffected.

    ``solver`` is the strategy's registry name (``"none"`` for the baselines).
    """

    alternatives: tuple[Alternative, ...]
    status: str
    solver: str
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the ``repayplan quote --json`` output)."""
        return {
            "alternatives": [a.to_dict() for a in self.alternatives],
            "status": self.status,
            "solver": self.solver,
            "reasons": list(self.reasons),
        }
