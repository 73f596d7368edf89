"""The ``repayplan`` command line: every command is a thin shell over a library function."""

from __future__ import annotations

import importlib

from repayplan.cli.app import app, main

# Each module registers its commands on ``app``; a module not written yet is simply absent.
for _name in (
    "finance_cmds",
    "store_cmds",
    "risk_cmds",
    "plan_cmds",
    "portfolio_cmds",
    "demo_cmds",
    "report_cmds",
    "simulate_cmds",
    "share_cmds",
    "service_cmds",
):
    try:
        importlib.import_module(f"repayplan.cli.{_name}")
    except ModuleNotFoundError as exc:  # pragma: no cover - only while a layer is missing
        if exc.name != f"repayplan.cli.{_name}":
            raise

__all__ = ["app", "main"]
