"""The ``repayplan schedule`` and ``repayplan apr`` commands, end to end."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from repayplan.cli import app, main

EXE = str(Path(sys.executable).with_name("repayplan"))
runner = CliRunner()

ISSUE_EXAMPLE = [
    "schedule", "--principal", "100", "--annual-rate", "9.4822", "--periods", "6",
    "--frequency", "monthly", "--start", "2024-01-01", "--day-count", "30/360",
    "--method", "annuity",
]  # fmt: skip


def test_schedule_json_has_the_issue_keys():
    result = runner.invoke(app, [*ISSUE_EXAMPLE, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"installments", "total_interest", "total_paid"}
    assert data["installments"][0] == {
        "number": 1,
        "due_date": "2024-02-01",
        "payment": "17.13",
        "principal": "16.34",
        "interest": "0.79",
        "balance": "83.66",
    }
    assert data["installments"][-1]["balance"] == "0.00"
    assert (data["total_interest"], data["total_paid"]) == ("2.78", "102.78")


def test_schedule_table_options():
    args = [*ISSUE_EXAMPLE[:-2], "--method", "equal-principal", "--installment-multiple", "1"]
    result = runner.invoke(app, [*args, "--grace-periods", "1"])
    assert result.exit_code == 0, result.output
    assert "Total" in result.stdout and "100.00" in result.stdout


def write(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "flows.csv"
    path.write_text("\n".join(["date,amount", *rows]) + "\n")
    return path


def test_apr_actuarial_and_irr_json(tmp_path):
    # Appendix J (c)(5)(i): $1,000 on 1/3/78, $1,080 on 9/15/78 → 11.45 %.
    path = write(tmp_path, ["1978-01-03,-1000.00", "1978-09-15,1080.00"])
    result = runner.invoke(app, ["apr", "--cashflows", str(path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["unit_period"] == "term"
    assert round(data["apr_percent"], 2) == 11.45
    monthly = ["2024-01-01,-10000"] + [f"2024-{m:02d}-01,888.49" for m in range(2, 13)]
    path = write(tmp_path, [*monthly, "2025-01-01,888.49"])
    result = runner.invoke(app, ["apr", "--cashflows", str(path), "--method", "irr", "--json"])
    data = json.loads(result.stdout)
    assert set(data) >= {
        "periodic_rate_percent",
        "nominal_annual_rate_percent",
        "effective_annual_rate_percent",
    }
    assert round(data["nominal_annual_rate_percent"], 2) == 12.00
    assert round(data["effective_annual_rate_percent"], 2) == 12.68
    table = runner.invoke(app, ["apr", "--cashflows", str(path)])
    assert table.exit_code == 0 and "apr percent" in table.stdout


@pytest.mark.parametrize(
    ("args", "rows", "needle"),
    [
        (["--principal", "-100"], None, "principal"),
        (["--periods", "0"], None, "periods"),
        (["--day-count", "30/365"], None, "day_count"),
        (["--annual-rate", "abc"], None, "annual_rate"),
        (["--start", "2024-02-30"], None, "start"),
        (None, ["2024-01-01,-100"], "no payments"),
        (None, ["2024-01-01,-100", "01/02/2024,101"], "line 3: date"),
        (None, ["2024-01-01,-100", "2024-02-01,1.005"], "amount"),
    ],
)
def test_bad_input_is_one_line_with_the_field(tmp_path, monkeypatch, capsys, args, rows, needle):
    if rows is None:
        base = dict(zip(ISSUE_EXAMPLE[1::2], ISSUE_EXAMPLE[2::2], strict=True))
        base.update(dict(zip(args[::2], args[1::2], strict=True)))
        cmd = ["schedule", *[x for kv in base.items() for x in kv]]
    else:
        cmd = ["apr", "--cashflows", str(write(tmp_path, rows))]
    monkeypatch.setattr(sys, "argv", ["repayplan", *cmd])
    with pytest.raises(SystemExit) as exit_:
        main()  # the console entry point, in-process
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), lines
    assert needle in lines[0]


def test_installed_command_exits_2_without_traceback():
    proc = subprocess.run(
        [EXE, "schedule", "--principal", "-100", "--annual-rate", "5", "--periods", "6"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: principal: must be > 0, got -100.00"
