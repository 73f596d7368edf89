"""``python -m repayplan.cli``: the ``repayplan`` command (what tests start servers with)."""

from repayplan.cli import main

main()
