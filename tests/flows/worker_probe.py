"""Run inside a chunk worker (``flows.chunks.ChunkPool``): this module imports nothing of
the tests' Prefect harness, so what it sees is what the worker itself imported."""

from __future__ import annotations

import sys


def imports_prefect() -> bool:
    """True when Prefect is imported in this process."""
    return "prefect" in sys.modules
