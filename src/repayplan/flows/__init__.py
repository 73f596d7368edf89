"""Prefect flows: thin wrappers over the library (``repayplan.portfolio.replan``)."""
