"""``repayplan replan`` from the command line: JSON output, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from repayplan.cli import app

from .conftest import AS_OF

pytestmark = pytest.mark.flows
CLI = str(Path(sys.executable).parent / "repayplan")


def test_replan_json(demo_db):
    result = CliRunner().invoke(
        app, ["replan", "--db", str(demo_db), "--as-of", AS_OF.isoformat(), "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout[result.stdout.index("{") :])
    assert payload["as_of"] == AS_OF.isoformat()
    assert payload["status"] in ("succeeded", "partial")
    assert payload["selection"]["method"] == "exact-cpsat"
    assert set(payload["timings"]) >= {"candidates", "selection", "compliance", "write"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--as-of", "2025-13-01"], "error: as_of: not a date"),
        (["--runner", "cloud"], "error: runner: unknown runner 'cloud'"),
        (["--workers", "0"], "error: workers: must be at least 1"),
    ],
)
def test_bad_input_is_one_line(demo_db, args, message):
    proc = subprocess.run(
        [CLI, "replan", "--db", str(demo_db), *args], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith(message)
    assert "Traceback" not in proc.stderr


def test_missing_database(tmp_path):
    proc = subprocess.run(
        [CLI, "replan", "--db", str(tmp_path / "none.duckdb")], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "no such database file" in proc.stderr
