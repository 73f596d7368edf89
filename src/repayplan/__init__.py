"""repayplan: personalised loan repayment plans by optimisation.

Layers, top to bottom (each imports only from the ones below it):
``cli`` / ``flows`` → ``portfolio`` → ``plans`` → ``risk`` → ``finance``; ``store`` owns DuckDB.
"""

__version__ = "0.1.0"
