"""Portfolio-wide limits that no single loan sees, checked when the nightly run picks plans."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from repayplan.errors import InputError

_RECORD = "limits"


@dataclass(frozen=True)
class PortfolioLimits:
    """Limits on the set of plans chosen across the portfolio; ``None`` means "no limit".

    Attributes:
        concession_budget: most total concession (currency units) the chosen plans may give.
        collection_floors: least expected cash (currency units) collected in each of the next
            three months, summed over all loans.
        segment_caps: segment name → most share (a fraction 0..1) of that segment's loans
            (those present in the candidates) whose chosen plan is a restructure.
        review_capacity: most chosen plans that need a manual review.
    """

    concession_budget: float | None = None
    collection_floors: tuple[float, float, float] | None = None
    segment_caps: dict[str, float] = field(default_factory=dict)
    review_capacity: int | None = None

    def __post_init__(self) -> None:
        budget = self.concession_budget
        if budget is not None and not (math.isfinite(budget) and budget >= 0):
            raise InputError(
                f"must be a finite amount >= 0, got {budget!r}",
                field="concession_budget",
                record=_RECORD,
            )
        floors = self.collection_floors
        if floors is not None:
            if len(floors) != 3:
                raise InputError(
                    f"needs exactly 3 monthly amounts, got {len(floors)}",
                    field="collection_floors",
                    record=_RECORD,
                )
            if not all(math.isfinite(f) for f in floors):
                raise InputError(
                    f"must be finite amounts, got {floors!r}",
                    field="collection_floors",
                    record=_RECORD,
                )
            # A frozen dataclass cannot assign normally; store a tuple whatever was passed.
            object.__setattr__(self, "collection_floors", tuple(float(f) for f in floors))
        for segment, cap in self.segment_caps.items():
            if not (math.isfinite(cap) and 0.0 <= cap <= 1.0):
                raise InputError(
                    f"segment {segment!r}: cap must be a share between 0 and 1, got {cap!r}",
                    field="segment_caps",
                    record=_RECORD,
                )
        capacity = self.review_capacity
        if capacity is not None and (int(capacity) != capacity or capacity < 0):
            raise InputError(
                f"must be a whole number >= 0, got {capacity!r}",
                field="review_capacity",
                record=_RECORD,
            )
