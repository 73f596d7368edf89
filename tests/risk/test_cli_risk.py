"""`repayplan risk fit` / `risk score`: thin shells over pd_model.fit / score."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from repayplan.cli import app

BIN = Path(sys.executable).with_name("repayplan")


@pytest.fixture(scope="module")
def cli_db(risk_db, tmp_path_factory):
    """A copy of the shared book, so the CLI's fit does not replace the shared active model."""
    db = tmp_path_factory.mktemp("cli") / "book.duckdb"
    shutil.copy(risk_db, db)
    return db


def test_fit_json_has_the_acceptance_fields(cli_db):
    result = CliRunner().invoke(app, ["risk", "fit", "--db", str(cli_db), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    for key in ("auc", "oracle_auc", "brier", "calibration_error", "model_id"):
        assert key in out
    assert out["auc"] >= 0.95 * out["oracle_auc"]
    curve = out["burden_curve"]
    assert curve["ratios"][0] == 0 and len(curve["ratios"]) == len(curve["factors"])
    assert Path(out["artifact_path"]).parent == cli_db.with_name("book.models").resolve()


def test_score_json_and_table(cli_db):
    runner = CliRunner()
    result = runner.invoke(app, ["risk", "score", "--db", str(cli_db), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["loans"] > 0 and 0 < out["mean_pd_12m"] < 1
    table = runner.invoke(app, ["risk", "score", "--db", str(cli_db)])
    assert table.exit_code == 0 and "loans scored" in table.stdout


def test_bad_input_is_one_line_exit_2(tmp_path, cli_db):
    missing = subprocess.run(
        [str(BIN), "risk", "score", "--db", str(tmp_path / "none.duckdb")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2
    assert missing.stderr.strip().startswith("error:") and "db" in missing.stderr
    assert "Traceback" not in missing.stderr
    bad_date = subprocess.run(
        [str(BIN), "risk", "fit", "--db", str(cli_db), "--as-of", "2025-02-30"],
        capture_output=True,
        text=True,
    )
    assert bad_date.returncode == 2 and "as_of" in bad_date.stderr
