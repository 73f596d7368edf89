"""Generated bad input for every command of the CLI: whatever a person types, the answer is
exit 0 (the value was fine) or exit 2 with exactly one ``error: FIELD: reason`` line on
stderr — never a traceback, never exit 1 (an unexpected error).

Each test draws options from :data:`NASTY` (text, NaN, infinities, huge and tiny numbers,
far and impossible dates, control characters, option-like strings) and, for the file
options, files in wrong encodings or of random bytes. The commands run in-process through
the console entry point :func:`repayplan.cli.main`, the same boundary a shell uses.
Commands that would start real work on a valid value (``replan``, ``demo``, ``init-demo``,
``risk``) get only values that must be refused before anything starts.
"""

from __future__ import annotations

import io
import os
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repayplan.cli import main
from repayplan.store.demo import init_demo

AS_OF = date(2025, 6, 30)
#: Examples per test are multiplied by this (CI: 1; a longer hunt: REPAYPLAN_FUZZ_SCALE=10).
SCALE = float(os.environ.get("REPAYPLAN_FUZZ_SCALE", "1"))
SETTINGS = settings(
    max_examples=int(40 * SCALE),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=False,
)

_SPECIAL = [
    "NaN", "nan", "-nan", "sNaN", "inf", "-inf", "Infinity", "1e308", "-1e308", "1e-320",
    "1e400", "-1e400", "0", "-0", "-1", "0.000000001", "9" * 40, "", " ", "abc", "1,5",
    "0x10", "12.5", "2.5", "1_000", "∞", "½", "١٢", "\x00", "\t", "null", "None", "true",
    "9999-12-31", "0001-01-01", "2025-02-30", "2025-13-01", "1970-01-01", "2200-12-31",
    "-5", "+5", "5e", ".", "%", "100%", "1e5", "100000", "4294967296", "-9223372036854775809",
]  # fmt: skip

#: One option value a person might type.
NASTY = st.one_of(
    st.sampled_from(_SPECIAL),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.integers(-(10**30), 10**30).map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.dates(date(1, 1, 1), date(9999, 12, 31)).map(str),
    st.text(max_size=12),
)


def run(argv: list[str]) -> tuple[int, str, str]:
    """``repayplan ARGV`` in-process: exit status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as exc:
            code = exc.code
    return (
        (code if isinstance(code, int) else (0 if code is None else 1)),
        out.getvalue(),
        err.getvalue(),
    )


def check(argv: list[str], *, must_fail: bool = False) -> None:
    """The contract of every command (see the module docstring)."""
    code, _, err = run(argv)
    assert "Traceback" not in err, (argv, err)
    if must_fail:
        assert code == 2, (argv, code, err)
    assert code in (0, 2), (argv, code, err)
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (argv, err)
        assert lines[0].count(":") >= 2 or "usage" in lines[0], (argv, err)


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> Path:
    """A small demo portfolio (read only by these tests)."""
    db = tmp_path_factory.mktemp("cli-bad-input") / "portfolio.duckdb"
    init_demo(db, loans=120, seed=3, as_of=AS_OF)
    return db


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch, tmp_path_factory):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("REPAYPLAN_LOG_DIR", str(tmp_path_factory.mktemp("logs")))


SCHEDULE = {
    "--principal": "1000",
    "--annual-rate": "9.5",
    "--periods": "12",
    "--start": "2025-01-31",
}
SCHEDULE_OPTIONS = [
    *SCHEDULE, "--frequency", "--day-count", "--method", "--installment-multiple",
    "--grace-periods", "--balloon",
]  # fmt: skip


@SETTINGS
@given(options=st.dictionaries(st.sampled_from(SCHEDULE_OPTIONS), NASTY, min_size=1, max_size=3))
def test_schedule(options):
    args = {**SCHEDULE, **options}
    check(["schedule", *[x for kv in args.items() for x in kv], "--json"])


QUOTE = {
    "--balance": "5000",
    "--annual-rate": "12",
    "--monthly-income": "5000",
    "--essential-expenses": "1500",
    "--max-term": "60",
    "--remaining-term": "24",
    "--start": "2025-01-31",
}
QUOTE_OPTIONS = [
    *QUOTE, "--other-debt", "--arrears", "--penalty-fees", "--hardship", "--strategy",
    "--preset", "--fixed-costs", "--solver", "--recovery-months", "--hardship-income-factor",
    "--income-seasonality",
]  # fmt: skip
SEASONALITY = st.lists(NASTY | st.floats(0, 5).map(str), min_size=0, max_size=14).map(",".join)


@settings(SETTINGS, max_examples=int(60 * SCALE))
@given(
    options=st.dictionaries(
        st.sampled_from(QUOTE_OPTIONS), NASTY | SEASONALITY, min_size=1, max_size=2
    )
)
def test_quote(options):
    args = {**QUOTE, **options}
    check(["quote", *[x for kv in args.items() for x in kv], "--json"])


@st.composite
def cashflow_files(draw) -> bytes:
    """A ``date,amount`` file: good, with bad values, in a wrong encoding, or random bytes."""
    rows = draw(
        st.lists(st.tuples(NASTY, NASTY | st.integers(-(10**6), 10**6).map(str)), max_size=5)
    )
    text = "date,amount\n2024-01-01,-1000\n" + "".join(f"{d},{a}\n" for d, a in rows)
    how = draw(st.sampled_from(["utf-8", "utf-16", "latin-1", "cp1252", "bytes", "bom"]))
    if how == "bytes":
        return draw(st.binary(max_size=200))
    if how == "bom":
        return b"\xef\xbb\xbf" + text.encode("utf-8", "surrogatepass")
    return text.encode(how, "replace")


@SETTINGS
@given(content=cashflow_files(), method=st.sampled_from(["actuarial", "irr"]) | NASTY)
def test_apr(content, method):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "flows.csv"
        path.write_bytes(content)
        check(["apr", "--cashflows", str(path), "--method", method, "--json"])


@SETTINGS
@given(
    loan=NASTY,
    strategy=st.sampled_from(["optimize", "waterfall", "contract"]) | NASTY,
    solver=st.sampled_from(["fast"]) | NASTY,
)
def test_plan(book, loan, strategy, solver):
    if loan.startswith("-"):
        loan = "L" + loan
    check(["plan", loan, "--db", str(book), "--strategy", strategy, "--solver", solver, "--json"])


def _not(values: tuple[str, ...]):
    return NASTY.filter(lambda v: v.strip() not in values)


#: Values ``replan`` must refuse before its Prefect server starts.
REPLAN_BAD = {
    "--scope": _not(("triggered", "all")),
    "--runner": _not(("threads", "processes", "dask")),
    "--chunk-size": st.integers(-(10**6), 0).map(str) | st.sampled_from(["abc", "2.5", "NaN"]),
    "--workers": st.integers(-(10**6), 0).map(str) | st.sampled_from(["257", "1e3", "x"]),
    "--as-of": st.dates(date(1, 1, 1), date(2025, 6, 29)).map(str)
    | st.dates(date(2031, 1, 1), date(9999, 12, 31)).map(str)
    | st.sampled_from(["2025-02-30", "today", "NaN", "", "20250630"]),
    "--inbox": st.text(min_size=1, max_size=10).map(lambda t: f"/nonexistent/{t}"),
}


@SETTINGS
@given(data=st.data())
def test_replan_refuses_before_anything_starts(book, data):
    option = data.draw(st.sampled_from(sorted(REPLAN_BAD)))
    value = data.draw(REPLAN_BAD[option])
    before = sorted(p.name for p in book.parent.iterdir())
    check(["replan", "--db", str(book), "--as-of", AS_OF.isoformat(), option, value, "--json"],
          must_fail=True)  # fmt: skip
    assert sorted(p.name for p in book.parent.iterdir()) == before


def _plain_date(text: str) -> bool:
    """Whether the CLI's date parser accepts ``text`` (1900 to 2200)."""
    try:
        value = datetime.strptime(text.strip(), "%Y-%m-%d").date()
    except ValueError:
        return False
    return date(1900, 1, 1) <= value <= date(2200, 12, 31)


_NOT_A_NUMBER = st.sampled_from(["abc", "2.5", "NaN", "inf", "", "1e3", "½", "0x10", "--json"])
DEMO_BAD = {
    "--loans": st.integers(-(10**9), 0).map(str)
    | st.integers(5_000_001, 10**30).map(str)
    | _NOT_A_NUMBER,
    "--seed": st.integers(-(10**30), -1).map(str) | _NOT_A_NUMBER,
    "--as-of": NASTY.filter(lambda v: not _plain_date(v)),
}


@SETTINGS
@given(data=st.data())
def test_init_demo_and_demo_refuse_bad_options(tmp_path_factory, data):
    option = data.draw(st.sampled_from(sorted(DEMO_BAD)))
    value = data.draw(DEMO_BAD[option])
    db = tmp_path_factory.mktemp("demo") / "d.duckdb"
    check(["init-demo", "--db", str(db), option, value, "--json"], must_fail=True)
    check(["demo", "--db", str(db), "--runner", "nowhere", "--json"], must_fail=True)
    assert not db.exists()


@SETTINGS
@given(command=st.sampled_from(["fit", "score"]), value=NASTY.filter(lambda v: not _plain_date(v)))
def test_risk_refuses_bad_dates(book, command, value):
    check(["risk", command, "--db", str(book), "--as-of", value, "--json"], must_fail=True)


@SETTINGS
@given(option=st.sampled_from(["--rate-cap", "--as-of"]), value=NASTY)
def test_import_options(tmp_path_factory, option, value):
    folder = tmp_path_factory.mktemp("imp")
    borrowers = folder / "in" / "borrowers.csv"
    borrowers.parent.mkdir()
    borrowers.write_text(
        "borrower_id,monthly_income,essential_expenses,other_debt_payments\nB1,3000,900,0\n"
    )
    db = folder / "p.duckdb"
    check(["import", "--db", str(db), "--borrowers", str(borrowers), option, value, "--json"])


@settings(SETTINGS, max_examples=int(20 * SCALE))
@given(
    args=st.lists(NASTY | st.sampled_from(["--db", "--json", "--help", "-x", "--", "risk"]),
                  max_size=4),
    command=st.sampled_from(
        ["schedule", "apr", "quote", "plan", "replan", "serve", "import", "init-demo",
         "demo", "risk", "risk fit", "risk score", "serve-api", "api-key", "nonsense", ""]
    ),
)  # fmt: skip
def test_usage_errors_are_one_line(tmp_path_factory, command, args):
    # Whatever follows the command: a missing option, an unknown one, a stray argument.
    cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("usage"))  # relative --db values land here
    try:
        argv = [*command.split(), *args]
        if "--db" not in argv:
            argv += ["--db", "/nonexistent/p.duckdb"]
        code, _, err = run(argv)
    finally:
        os.chdir(cwd)
    assert "Traceback" not in err
    assert code in (0, 2), (argv, code, err)
    if code == 2 and err.strip():
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (argv, err)


def test_a_typer_usage_error_names_the_option():
    code, _, err = run(["schedule", "--principal", "1", "--annual-rate", "1", "--periods", "abc"])
    assert code == 2 and err.startswith("error: --periods: ")
    code, _, err = run(["schedule", "--annual-rate", "1", "--periods", "3"])
    assert (code, err.strip()) == (2, "error: --principal: required")
    code, _, err = run(["schedule", "--bogus"])
    assert (code, err.strip()) == (2, "error: --bogus: no such option")
