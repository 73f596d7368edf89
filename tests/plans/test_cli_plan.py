"""The ``quote`` and ``plan`` commands: JSON shape, one-line errors, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from repayplan.cli import app

RUNNER = CliRunner()
BASE = [
    "quote",
    "--balance",
    "15000",
    "--annual-rate",
    "12",
    "--monthly-income",
    "5000",
    "--essential-expenses",
    "2000",
    "--remaining-term",
    "36",
    "--start",
    "2025-01-31",
]
CLI = [str(Path(sys.executable).parent / "repayplan")]


def test_quote_json():
    result = RUNNER.invoke(app, [*BASE, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"alternatives", "status", "solver", "reasons"}
    assert data["status"] == "ok" and data["solver"] == "fast"
    first = data["alternatives"][0]["installments"][0]
    assert first["due_date"] == "2025-02-28"


def test_quote_table_and_options():
    args = [
        *BASE,
        "--hardship",
        "seasonal",
        "--arrears",
        "300",
        "--penalty-fees",
        "25",
        "--income-seasonality",
        "0.8,0.8,1,1,1.2,1.2,1.2,1,1,1,0.9,0.9",
        "--solver",
        "pulp-highs",
    ]
    result = RUNNER.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "seasonal" in result.stdout and "status: ok" in result.stdout


def test_quote_waterfall_json():
    result = RUNNER.invoke(
        app,
        [*BASE, "--strategy", "waterfall", "--preset", "hamp", "--fixed-costs", "1200", "--json"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["alternatives"][0]["name"] == "waterfall"


def test_bad_input_is_one_line_exit_2():
    for extra in (["--hardship", "bored"], ["--income-seasonality", "1,2"], ["--solver", "nope"]):
        proc = subprocess.run([*CLI, *BASE, *extra], capture_output=True, text=True)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith("error:") and "Traceback" not in proc.stderr
    proc = subprocess.run([*CLI, *BASE[:-4], "--balance", "-5"], capture_output=True, text=True)
    assert proc.returncode == 2 and "--balance" in proc.stderr


def test_plan_needs_an_existing_db(tmp_path):
    proc = subprocess.run(
        [*CLI, "plan", "L1", "--db", str(tmp_path / "missing.duckdb")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "no such file" in proc.stderr
