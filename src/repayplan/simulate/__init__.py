"""Policy simulation: what each policy's plans lead to, month by month, with intervals."""

from repayplan.simulate.run import SimulationReport, simulate

__all__ = ["SimulationReport", "simulate"]
