"""Prefect set up for offline, local use — call :func:`configure` before ``prefect`` is imported.

Prefect reads its settings from the environment when it is first imported, so this module
only touches ``os.environ`` and must not import prefect itself. What it sets, unless the user
already set it:

- ``PREFECT_HOME``: ``.prefect`` under the current directory, so runs, the temporary local
  server's database and logs stay inside the project instead of ``~/.prefect``;
- ``PREFECT_SERVER_ANALYTICS_ENABLED=false`` and ``DO_NOT_TRACK=1``: no network here;
- ``PREFECT_LOGGING_LEVEL=WARNING``: a quiet log (run summaries are printed by repayplan);
- ``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=120``: the temporary server takes
  10–20 s to start the first time on a small machine; the default 20 s is too tight;
- ``DASK_DISTRIBUTED__LOGGING__DISTRIBUTED=warning``: a LocalCluster is quiet too.

``PREFECT_API_URL`` is respected: when it is set, flows report to that server (for example
one started with ``prefect server start``) instead of a temporary local one.
"""

from __future__ import annotations

import os
from pathlib import Path

_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "DASK_DISTRIBUTED__LOGGING__DISTRIBUTED": "warning",
}


def configure(home: str | Path | None = None) -> dict[str, str]:
    """Set Prefect's environment for offline local use (values already set are kept).

    ``home``: where ``PREFECT_HOME`` points when it is not set (default ``./.prefect``).
    Returns the variables this call set.
    """
    wanted = dict(_DEFAULTS)
    wanted["PREFECT_HOME"] = str(Path(home or Path.cwd() / ".prefect").resolve())
    set_now = {}
    for key, value in wanted.items():
        if key not in os.environ:
            os.environ[key] = value
            set_now[key] = value
    return set_now
