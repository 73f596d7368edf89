"""``loans_for_planning`` gives missing values as None (never NaN / NaT) and dates as dates."""

from __future__ import annotations

import math
from datetime import date

import duckdb
import numpy as np
import pandas as pd

from repayplan.store.queries import loans_for_planning


def test_missing_values_are_none_and_records_are_plain_python(demo_db):
    db, _ = demo_db
    con = duckdb.connect(str(db), read_only=True)
    try:
        ids = [r[0] for r in con.execute("SELECT loan_id FROM loans").fetchall()]
        frame = loans_for_planning(con, ids)
    finally:
        con.close()
    records = frame.to_dict("records")
    for column in ("expected_recovery_date", "next_due_date", "last_restructure_date",
                   "hardship", "hardship_income_factor", "base_monthly_hazard"):  # fmt: skip
        values = [r[column] for r in records]
        assert any(v is None for v in values), column  # the demo book has gaps in each
        assert not any(isinstance(v, float) and math.isnan(v) for v in values), column
        assert not any(v is pd.NaT or isinstance(v, pd.Timestamp) for v in values), column
    for record in records[:200]:
        assert isinstance(record["as_of"], date) and not isinstance(record["as_of"], pd.Timestamp)
        assert not any(isinstance(v, np.generic) for v in record.values())
    assert any(isinstance(r["next_due_date"], date) for r in records)
    assert frame["outstanding_principal"].dtype.kind == "i"
