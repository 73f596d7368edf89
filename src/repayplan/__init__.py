"""repayplan: personalised loan repayment plans by optimisation.

Layers, top to bottom (each imports only its own and the ones below it; checked by
``tests/test_imports.py``, explained in ``docs/explanation/architecture.md``):
``cli`` / ``flows`` / ``demo`` → ``portfolio`` → ``plans`` → ``risk`` → ``finance`` → ``store``.
"""

__version__ = "0.1.0"
