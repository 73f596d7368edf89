"""Solver strategies: one registry, declared capabilities, the same model on every solver.

``get_strategy(name).solve(lp)`` answers an :class:`~repayplan.plans.lp.LPSolution`;
see :mod:`repayplan.plans.strategies.base` for the status and dual-sign conventions.
"""

from repayplan.plans.strategies.base import Capabilities, SolverStrategy
from repayplan.plans.strategies.registry import get_strategy, strategies_for, strategy_names

__all__ = ["Capabilities", "SolverStrategy", "get_strategy", "strategies_for", "strategy_names"]
