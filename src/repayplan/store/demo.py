"""``repayplan init-demo``: a realistic, deterministic demo portfolio in DuckDB.

Borrowers and loans are drawn by :mod:`repayplan.store.population`, their history simulated
by :mod:`repayplan.store.simulate` under :mod:`repayplan.store.behaviour`, and written chunk
by chunk as Arrow tables (never row by row), one transaction per chunk, so memory stays
bounded (≈ 0.7 GB peak RSS whatever the size). ``store_meta.demo_status`` reads
``building`` until the last chunk is in, then ``complete``; an interrupted build is redone
by running it again. The same seed and ``as_of`` give the same portfolio (chunk ``c`` draws
from ``default_rng((seed, c))``, so the chunk size is part of the recipe).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from repayplan.errors import InputError
from repayplan.store.behaviour import BehaviourParams
from repayplan.store.connection import DEFAULT_DB, connect
from repayplan.store.pii import Pseudonymiser, pseudonymiser_for
from repayplan.store.population import (
    Borrowers,
    Loans,
    draw_borrowers,
    draw_loans,
    loans_per_borrower,
)
from repayplan.store.publish import publish
from repayplan.store.schema import BUCKETS, HARDSHIP_REASONS, PRODUCTS, SEGMENTS
from repayplan.store.simulate import Simulation, simulate

#: Loans per chunk: bounds the Python side's memory (mostly contract installments).
CHUNK_LOANS = 10_000
#: DuckDB's memory ceiling while the demo is written; measured peak RSS for 100k loans is
#: 0.7 GB with these two settings, and it stays flat as the portfolio grows.
DUCKDB_MEMORY_LIMIT = "256MB"
_EPOCH_MONTH = np.datetime64("1970-01", "M")
_TRUTH_COLUMNS = ("parameter", "value", "description")
#: The book's tables, whose rows the demo's summary counts.
_BOOK_TABLES = (
    "borrowers",
    "loans",
    "contract_installments",
    "payments",
    "income_observations",
    "hardship_requests",
    "loan_month_truth",
)
#: Tables a new demo replaces (policies, risk models and the migration log are kept).
_DATA_TABLES = (
    *_BOOK_TABLES,
    "behaviour_truth",
    "risk_scores",
    "plans",
    "plan_installments",
    "runs",
    "rejected_rows",
    "imports",
)


@dataclass(frozen=True)
class DemoSummary:
    """What ``init_demo`` built: row counts per table, loan shares per delinquency bucket and
    per status (fractions of all loans), and the wall-clock seconds it took."""

    db: str
    loans: int
    borrowers: int
    seed: int
    as_of: date
    seconds: float
    rows: dict[str, int] = field(default_factory=dict)
    bucket_shares: dict[str, float] = field(default_factory=dict)
    status_shares: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (``repayplan init-demo --json``)."""
        return {
            "db": self.db,
            "loans": self.loans,
            "borrowers": self.borrowers,
            "seed": self.seed,
            "as_of": self.as_of.isoformat(),
            "seconds": round(self.seconds, 3),
            "rows": self.rows,
            "rows_per_second": round(sum(self.rows.values()) / max(self.seconds, 1e-9)),
            "bucket_shares": self.bucket_shares,
            "status_shares": self.status_shares,
        }


#: Largest demo book (loans).
MAX_DEMO_LOANS = 5_000_000


def init_demo(
    db: str | Path = DEFAULT_DB,
    loans: int = 10_000,
    seed: int = 7,
    as_of: date | None = None,
    *,
    params: BehaviourParams | None = None,
    chunk_loans: int = CHUNK_LOANS,
) -> DemoSummary:
    """Replace the portfolio data in ``db`` by a simulated demo book of ``loans`` loans.

    ``as_of`` (default today) is the date balances, delinquency and history refer to.
    ``params`` overrides the behavioural model's true parameters (stored in
    ``behaviour_truth``). Policies and risk models already in ``db`` are kept.
    """
    if not 1 <= loans <= MAX_DEMO_LOANS:
        raise InputError(f"must be between 1 and {MAX_DEMO_LOANS:,}, got {loans}", field="loans")
    if seed < 0:
        raise InputError("must be a non-negative integer", field="seed")
    as_of = as_of or date.today()
    params = params or BehaviourParams()
    started = time.perf_counter()
    con = connect(db)
    # DuckDB would otherwise cache up to 80 % of RAM; beyond this it spills to disk.
    con.execute(f"SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
    con.execute("SET preserve_insertion_order = false")
    try:
        pseudo = pseudonymiser_for(con, db)
        counts = loans_per_borrower(np.random.default_rng([seed, 0]), loans)
        with _transaction(con):
            for table in _DATA_TABLES:
                con.execute(f"DELETE FROM {table}")
            _insert(
                con,
                "INSERT INTO behaviour_truth SELECT * FROM chunk_frame",
                pa.table(dict(zip(_TRUTH_COLUMNS, zip(*params.rows(), strict=True), strict=True))),
            )
            _write_meta(con, {"demo_status": "building", "demo_seed": seed,
                              "demo_as_of": as_of.isoformat(), "demo_loans": loans})  # fmt: skip
        loan_cum = np.concatenate([[0], np.cumsum(counts)])
        borrower_start = 0
        chunk = 0
        while borrower_start < counts.size:
            # Whole borrowers per chunk, about chunk_loans loans each.
            stop = int(np.searchsorted(loan_cum, loan_cum[borrower_start] + chunk_loans, "right"))
            stop = max(min(stop - 1, counts.size), borrower_start + 1)
            rng = np.random.default_rng([seed, chunk + 1])
            bor = draw_borrowers(rng, np.arange(borrower_start, stop))
            ln = draw_loans(
                rng, bor, counts[borrower_start:stop], int(loan_cum[borrower_start]), as_of
            )
            sim = simulate(rng, bor, ln, as_of, params)
            # One transaction per chunk: a single one would hold every uncommitted chunk
            # in memory (measured: +8 MB per 1,000 loans).
            with _transaction(con):
                _write_chunk(con, pseudo, bor, ln, sim, as_of)
            borrower_start = stop
            chunk += 1
        _write_meta(con, {"demo_status": "complete"})
        if str(db) != ":memory:":  # analysts see the book once it is whole
            publish(db, "demo", con=con)
        return _summary(con, str(db), seed, as_of, time.perf_counter() - started)
    finally:
        con.close()


@contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _write_meta(con: duckdb.DuckDBPyConnection, values: dict[str, object]) -> None:
    for key, value in values.items():
        con.execute(
            "INSERT INTO store_meta VALUES (?, ?) ON CONFLICT DO UPDATE SET value = excluded.value",
            [key, str(value)],
        )


def _months_to_dates(months: np.ndarray) -> np.ndarray:
    return (_EPOCH_MONTH + months.astype(np.int64)).astype("datetime64[D]")


def _insert(
    con: duckdb.DuckDBPyConnection, sql: str, frame: pa.Table, params: list | None = None
) -> int:
    con.register("chunk_frame", frame)
    try:
        con.execute(sql, params)
    finally:
        con.unregister("chunk_frame")
    return frame.num_rows


def _write_chunk(
    con: duckdb.DuckDBPyConnection,
    pseudo: Pseudonymiser,
    bor: Borrowers,
    ln: Loans,
    sim: Simulation,
    as_of: date,
) -> None:
    customer = [f"CUST{n:09d}" for n in bor.number.tolist()]
    borrower_id = np.array(pseudo.tokens("borrower", customer), dtype=object)
    season = pa.FixedSizeListArray.from_arrays(pa.array(bor.season.ravel()), 12)
    _insert(
        con,
        """INSERT INTO borrowers SELECT borrower_id, segment::segment,
           money_of_cents(income), money_of_cents(essential), money_of_cents(other_debt),
           season, volatility, name_token, nid_token, phone_token, 'demo' FROM chunk_frame""",
        pa.table(
            {
                "borrower_id": borrower_id,
                "segment": np.array(SEGMENTS)[bor.segment],
                "income": bor.income,
                "essential": bor.essential,
                "other_debt": bor.other_debt,
                "season": season,
                "volatility": bor.volatility,
                "name_token": pseudo.tokens("full_name", bor.full_name),
                "nid_token": pseudo.tokens("national_id", bor.national_id),
                "phone_token": pseudo.tokens("phone", bor.phone),
            }
        ),
    )
    st = sim.loans
    _insert(
        con,
        """INSERT INTO loans SELECT 'L' || lpad(number::VARCHAR, 8, '0'), borrower_id,
           product::product, money_of_cents(principal),
           CAST(CAST(rate_e4 AS DECIMAL(18,0)) * 0.0001 AS DECIMAL(7,4)), term_months,
           frequency::frequency, origination, money_of_cents(outstanding),
           money_of_cents(accrued), money_of_cents(arrears), money_of_cents(fees), dpd,
           bucket_of(dpd), status::loan_status, restructures, last_restructure, cures,
           money_of_cents(regular_payment), remaining, next_due, ?::DATE, 'demo'
           FROM chunk_frame""",
        pa.table(
            {
                "number": ln.number,
                "borrower_id": borrower_id[ln.borrower],
                "product": np.array(PRODUCTS)[ln.product],
                "principal": ln.principal,
                "rate_e4": ln.rate_e4,
                "term_months": ln.term_months,
                "frequency": ln.frequency,
                "origination": ln.origination,
                "outstanding": st["outstanding"],
                "accrued": st["accrued"],
                "arrears": st["arrears"],
                "fees": st["fees"],
                "dpd": st["dpd"],
                "status": st["status"],
                "restructures": st["restructures"],
                "last_restructure": st["last_restructure"],
                "cures": st["cures"],
                "regular_payment": st["regular_payment"],
                "remaining": st["remaining"],
                "next_due": st["next_due"],
            }
        ),
        [as_of],
    )
    c = sim.contract
    _insert(
        con,
        """INSERT INTO contract_installments SELECT 'L' || lpad(loan::VARCHAR, 8, '0'), number,
           due_date, money_of_cents(payment), money_of_cents(principal), money_of_cents(interest),
           money_of_cents(balance) FROM chunk_frame""",
        pa.table(
            {
                "loan": ln.number[c["loan"].astype(np.int64)],
                "number": c["number"].astype(np.int32),
                "due_date": c["due_date"].astype("datetime64[D]"),
                "payment": c["payment"].astype(np.int64),
                "principal": c["principal"].astype(np.int64),
                "interest": c["interest"].astype(np.int64),
                "balance": c["balance"].astype(np.int64),
            }
        ),
    )
    p = sim.payments
    _insert(
        con,
        """INSERT INTO payments SELECT 'L' || lpad(loan::VARCHAR, 8, '0'), payment_date, 1,
           money_of_cents(amount), due_date, number, 'demo' FROM chunk_frame""",
        pa.table(
            {
                "loan": ln.number[p["loan"].astype(np.int64)],
                "payment_date": p["payment_date"].astype("datetime64[D]"),
                "amount": p["amount"].astype(np.int64),
                "due_date": p["due_date"].astype("datetime64[D]"),
                "number": p["number"].astype(np.int32),
            }
        ),
    )
    t = sim.truth
    _insert(
        con,
        """INSERT INTO loan_month_truth SELECT 'L' || lpad(loan::VARCHAR, 8, '0'), month,
           due_date, pti, shock, unpaid, hazard, missed FROM chunk_frame""",
        pa.table(
            {
                "loan": ln.number[t["loan"].astype(np.int64)],
                "month": _months_to_dates(t["month"]),
                "due_date": t["due_date"].astype("datetime64[D]"),
                "pti": t["pti"].astype(np.float64),
                "shock": t["shock"].astype(bool),
                "unpaid": t["unpaid"].astype(np.int32),
                "hazard": t["hazard"].astype(np.float64),
                "missed": t["missed"].astype(bool),
            }
        ),
    )
    i = sim.income
    _insert(
        con,
        """INSERT INTO income_observations SELECT borrower_id, month, money_of_cents(income)
           FROM chunk_frame""",
        pa.table(
            {
                "borrower_id": borrower_id[i["borrower"].astype(np.int64)],
                "month": _months_to_dates(i["month"]),
                "income": i["income"].astype(np.int64),
            }
        ),
    )
    h = sim.hardship
    _insert(
        con,
        """INSERT INTO hardship_requests SELECT 'H' || lpad(loan::VARCHAR, 8, '0'),
           'L' || lpad(loan::VARCHAR, 8, '0'), requested_on, reason::hardship_reason,
           expected_recovery, income_factor, status::hardship_status FROM chunk_frame""",
        pa.table(
            {
                "loan": ln.number[h["loan"]],
                "requested_on": h["requested_on"].astype("datetime64[D]"),
                "reason": np.array(HARDSHIP_REASONS)[h["reason"]],
                "expected_recovery": h["expected_recovery"].astype("datetime64[D]"),
                "income_factor": h["income_factor"].astype(np.float64),
                "status": h["status"],
            }
        ),
    )


def _summary(
    con: duckdb.DuckDBPyConnection, db: str, seed: int, as_of: date, seconds: float
) -> DemoSummary:
    rows = {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in _BOOK_TABLES}
    total = max(rows["loans"], 1)
    buckets = dict(
        con.execute(
            "SELECT delinquency_bucket::VARCHAR, count(*) FROM loans "
            "WHERE status <> 'closed' GROUP BY 1"
        ).fetchall()
    )
    open_loans = max(sum(buckets.values()), 1)
    statuses = dict(
        con.execute("SELECT status::VARCHAR, count(*) FROM loans GROUP BY 1").fetchall()
    )
    return DemoSummary(
        db=db,
        loans=rows["loans"],
        borrowers=rows["borrowers"],
        seed=seed,
        as_of=as_of,
        seconds=seconds,
        rows=rows,
        bucket_shares={b: round(buckets.get(b, 0) / open_loans, 4) for b in BUCKETS},
        status_shares={s: round(n / total, 4) for s, n in sorted(statuses.items())},
    )
