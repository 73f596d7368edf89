"""The documentation site: it builds strictly, its CLI page matches the program, and the SQL
on its pages (and the queries ``repayplan demo`` prints) runs on a database of this schema."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import typer

from repayplan.cli import app
from repayplan.demo import EXAMPLE_QUERIES
from repayplan.store.schema import migrate

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SQL_BLOCK = re.compile(r"^```sql\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _command_paths() -> list[str]:
    root = typer.main.get_command(app)
    ctx = root.make_context("repayplan", [], resilient_parsing=True)
    paths = []
    for name in root.list_commands(ctx):
        command = root.get_command(ctx, name)
        paths.append(f"repayplan {name}")
        if hasattr(command, "list_commands"):
            paths += [f"repayplan {name} {sub}" for sub in command.list_commands(ctx)]
    return paths


def _migrated() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    migrate(con)
    return con


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return out


def test_docs_build_strictly(site: Path) -> None:
    assert (site / "index.html").is_file()
    assert (site / "reference" / "api" / "plans" / "index.html").is_file()


def test_cli_page_lists_every_command(site: Path) -> None:
    page = (site / "reference" / "cli" / "index.html").read_text()
    for path in _command_paths():
        assert f"<code>{path}</code>" in page, path


def test_schema_page_lists_every_table(site: Path) -> None:
    page = (site / "reference" / "schema" / "index.html").read_text()
    con = duckdb.connect()
    migrate(con)
    tables = [
        r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    ]
    for table in tables:
        assert f"<code>{table}</code>" in page, table


PAGES_WITH_SQL = sorted(
    p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md") if SQL_BLOCK.search(p.read_text())
)


@pytest.mark.parametrize("page", PAGES_WITH_SQL, ids=str)
def test_sql_on_the_page_runs(page: str) -> None:
    """Each ```sql block binds and runs (on an empty book: the point is the SQL, not rows)."""
    blocks = SQL_BLOCK.findall((DOCS / page).read_text())
    con = _migrated()
    # The report's queries take the run (and simulation, loans) as named parameters.
    values = {"run_id": "none", "sim_id": "none", "loans": ["none"]}
    for block in blocks:
        names = [n for n in values if f"${n}" in block]
        con.execute(block, {n: values[n] for n in names} if names else None)


@pytest.mark.parametrize("query", EXAMPLE_QUERIES, ids=lambda q: q.splitlines()[0][:40])
def test_demo_example_queries_run(query: str) -> None:
    _migrated().execute(query)
