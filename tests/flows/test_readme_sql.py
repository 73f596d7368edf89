"""Every SQL example of the README (and the queries ``repayplan demo`` prints) runs on a
replanned demo portfolio: documentation that cannot drift from DuckDB 2.0."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from repayplan.demo import EXAMPLE_QUERIES
from repayplan.flows.run import replan

from .conftest import AS_OF

pytestmark = pytest.mark.flows
ROOT = Path(__file__).resolve().parents[2]
#: The README is the front door; the analysts' queries live in the SQL how-to beside it.
PAGES = (ROOT / "README.md", ROOT / "docs" / "how-to" / "query-sql.md")


def pages_text() -> str:
    """The README and the SQL how-to, one after the other."""
    return "\n".join(p.read_text() for p in PAGES)


def sql_statements(markdown: str) -> list[str]:
    """The statements of every ```sql block, comments dropped, split on ``;``."""
    out = []
    for block in re.findall(r"```sql\n(.*?)```", markdown, flags=re.S):
        text = "\n".join(line.split("--", 1)[0] for line in block.splitlines())
        out += [s.strip() for s in text.split(";") if s.strip()]
    return out


def test_readme_has_sql_examples():
    assert len(sql_statements(pages_text())) >= 10


def test_every_readme_and_demo_query_runs(demo_db):
    replan(demo_db, AS_OF, runner="threads", workers=2)
    statements = sql_statements(pages_text())
    statements += sql_statements("".join(f"```sql\n{q}\n```" for q in EXAMPLE_QUERIES))
    con = duckdb.connect(str(demo_db), read_only=True)
    try:
        failed = {}
        for sql in statements:
            try:
                con.execute(sql).fetchall()
            except duckdb.Error as exc:
                failed[sql] = str(exc).splitlines()[0]
    finally:
        con.close()
    assert not failed, failed
