"""``fast``: the quickest exact LP path measured here — GLOP fed straight from the sparse arrays.

One ``fill_model_from_sparse_data`` call hands the whole program to OR-Tools (no Python object
per row or variable, no files, no subprocess), GLOP's dual simplex with its default presolve
solves it, and ``solve_batch`` runs loans on a thread pool because GLOP releases the GIL.
Tuning GLOP further (presolve off, dual simplex forced, other initial bases) was measured on
the plan LPs and was slower; see ``benchmarks/README.md``.
"""

from __future__ import annotations

from repayplan.plans.strategies.base import Capabilities
from repayplan.plans.strategies.ortools_mb import ModelBuilderStrategy


class FastStrategy(ModelBuilderStrategy):
    """GLOP through ``model_builder`` from sparse arrays; LPs only, with duals, batchable."""

    def __init__(self) -> None:
        super().__init__(
            "fast",
            "glop",
            Capabilities(lp=True, milp=False, duals=True, batch=True, exact=True),
            "OR-Tools model_builder filled from sparse arrays + GLOP; threads in batches",
        )
