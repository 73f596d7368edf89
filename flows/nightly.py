"""Deployment entry point of the nightly re-planning flow.

``prefect deploy flows/nightly.py:nightly_replan`` or ``python flows/nightly.py --db PATH``
(serves the nightly cron schedule against the server at ``PREFECT_API_URL``). The flow
itself lives in :mod:`repayplan.flows.nightly` so installed workers can import it.
"""

from __future__ import annotations

import sys

from repayplan.flows.nightly import nightly_replan, serve

__all__ = ["nightly_replan"]

if __name__ == "__main__":
    db = sys.argv[sys.argv.index("--db") + 1] if "--db" in sys.argv else "data/portfolio.duckdb"
    serve(db)
