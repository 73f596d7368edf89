"""What the store would lose on DuckLake, measured: run with DuckDB 1.5.5 and DuckLake from
the package index in a SEPARATE virtual environment (the project pins DuckDB 2.0):

    python3.11 -m venv /tmp/lake && /tmp/lake/bin/pip install duckdb==1.5.5 \\
        duckdb-extension-ducklake==1.5.5 duckdb-extension-sqlite==1.5.5 pytz
    /tmp/lake/bin/python benchmarks/ducklake_probe.py [--dir /tmp/ducklake-probe]

It loads the extensions from the wheels (no network: ``INSTALL`` from the file, the sqlite
extension copied in under the name ``sqlite_scanner``), attaches a DuckLake with an SQLite
catalog, and tries what repayplan's schema and writers use: ENUM types, primary keys,
``INSERT … ON CONFLICT`` upserts, macros, views; then times a 2M-row insert, an aggregate,
a 100k-row update and 200 one-row commits (the service's pattern) against a plain DuckDB
file in the same process, and the same 200 commits in an SQLite WAL inbox. Prints one line
per check (docs/concurrency.md quotes a run).
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import sqlite3
import time
import uuid

import duckdb


def _lake(work: str) -> duckdb.DuckDBPyConnection:
    import duckdb_extension_ducklake
    import duckdb_extension_sqlite

    ext_dir = os.path.join(work, "ext")
    os.makedirs(ext_dir, exist_ok=True)
    lake_file = glob.glob(
        os.path.dirname(duckdb_extension_ducklake.__file__) + "/**/*.duckdb_extension",
        recursive=True,
    )[0]
    sqlite_file = glob.glob(
        os.path.dirname(duckdb_extension_sqlite.__file__) + "/**/*.duckdb_extension", recursive=True
    )[0]
    con = duckdb.connect(
        config={"extension_directory": ext_dir, "autoinstall_known_extensions": False}
    )
    con.execute(f"INSTALL '{lake_file}'")
    target = glob.glob(f"{ext_dir}/v*/*")[0]
    shutil.copy(sqlite_file, f"{target}/sqlite_scanner.duckdb_extension")
    con.execute("LOAD ducklake; LOAD sqlite_scanner")
    con.execute(
        f"ATTACH 'ducklake:sqlite:{work}/catalog.sqlite' AS lake (DATA_PATH '{work}/data/')"
    )
    con.execute("USE lake")
    return con


def _try(con: duckdb.DuckDBPyConnection, label: str, sql: str) -> None:
    try:
        con.execute(sql)
        print(f"ok    {label}")
    except duckdb.Error as exc:
        print(f"FAILS {label}: {str(exc).splitlines()[0][:110]}")


def _timed(label: str, fn) -> None:
    tic = time.perf_counter()
    fn()
    print(f"time  {label}: {time.perf_counter() - tic:.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", default="/tmp/ducklake-probe")
    work = parser.parse_args().dir
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    print("duckdb", duckdb.__version__)
    lake = _lake(work)
    native = duckdb.connect(f"{work}/native.duckdb")
    for name, con in (("ducklake", lake), ("native", native)):
        print(f"-- {name}")
        _try(con, "ENUM type", "CREATE TYPE seg AS ENUM ('a', 'b')")
        _try(con, "PRIMARY KEY", "CREATE TABLE k (id INTEGER PRIMARY KEY, v INTEGER)")
        con.execute("CREATE TABLE IF NOT EXISTS k (id INTEGER, v INTEGER)")  # DuckLake: no key
        con.execute(
            "CREATE TABLE t (id INTEGER NOT NULL, v INTEGER, s VARCHAR, m DECIMAL(18,2), j JSON)"
        )
        _try(con, "macro", "CREATE MACRO m2(x) AS x * 2")
        _try(con, "view", "CREATE VIEW vv AS SELECT s, count(*) AS n FROM t GROUP BY ALL")
        _timed(
            "insert 2M rows",
            lambda c=con: c.execute(
                "INSERT INTO t SELECT i, i, 's' || (i % 10), i * 0.01, '{}' "
                "FROM range(2000000) r(i)"
            ),
        )
        _try(
            con,
            "upsert ON CONFLICT",
            "INSERT INTO k VALUES (1, 5) ON CONFLICT (id) DO UPDATE SET v = excluded.v",
        )
        _try(
            con,
            "MERGE INTO",
            "MERGE INTO t USING (SELECT 1 AS id, 7 AS v) src ON t.id = src.id "
            "WHEN MATCHED THEN UPDATE SET v = src.v",
        )
        _timed(
            "aggregate over 2M",
            lambda c=con: c.execute("SELECT s, count(*), sum(m) FROM t GROUP BY ALL").fetchall(),
        )
        _timed(
            "update 100k rows", lambda c=con: c.execute("UPDATE t SET v = v + 1 WHERE id < 100000")
        )
        con.execute("CREATE TABLE ev (event_id VARCHAR, kind VARCHAR, payload VARCHAR)")

        def commits(c=con):
            for i in range(200):
                c.execute("INSERT INTO ev VALUES (?, 'offer.accepted', '{}')", [str(i)])

        _timed("200 one-row commits", commits)
    inbox = sqlite3.connect(f"{work}/inbox.sqlite", isolation_level=None)
    inbox.execute("PRAGMA journal_mode = WAL")
    inbox.execute("PRAGMA synchronous = FULL")
    inbox.execute(
        "CREATE TABLE ev (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT UNIQUE, "
        "kind TEXT, payload TEXT)"
    )

    def sqlite_commits():
        for _ in range(200):
            inbox.execute("BEGIN IMMEDIATE")
            inbox.execute(
                "INSERT INTO ev (event_id, kind, payload) VALUES (?, ?, ?)",
                [uuid.uuid4().hex, "offer.accepted", "{}"],
            )
            inbox.execute("COMMIT")

    print("-- sqlite inbox (WAL, synchronous=FULL)")
    _timed("200 one-row commits", sqlite_commits)


if __name__ == "__main__":
    main()
