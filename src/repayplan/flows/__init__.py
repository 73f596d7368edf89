"""Prefect flows: thin wrappers over the library (``repayplan.portfolio.replan``).

``run.replan`` runs the nightly flow now; ``nightly`` is the flow itself.
"""
