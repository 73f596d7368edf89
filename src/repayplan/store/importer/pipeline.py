""":func:`import_files`: the options checked, then the steps in order (stage and check each
file, prepare, load, publish) in a private workspace; :class:`ImportSummary`.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from repayplan import progress
from repayplan.errors import InputError, scrub_errors
from repayplan.store.connection import DEFAULT_DB, connect
from repayplan.store.importer.columns import KINDS
from repayplan.store.importer.load import load
from repayplan.store.importer.read import stage_file
from repayplan.store.importer.staging import private_workspace
from repayplan.store.importer.tokenise import register_tokens
from repayplan.store.importer.upsert import prepare_load
from repayplan.store.importer.validate import MAX_RATE_PERCENT, check_across_rows
from repayplan.store.pii import pseudonymiser_for
from repayplan.store.publish import publish

#: Default regulatory cap on the annual rate, percent (the US 36 % MAPR benchmark).
DEFAULT_RATE_CAP_PERCENT = Decimal("36")
#: DuckDB's buffer-pool ceiling during an import; beyond it DuckDB spills to the private
#: temporary directory. Peak RSS is this plus Python, numpy and DuckDB's own overheads.
DEFAULT_MEMORY_LIMIT = "512MB"
_SIZE = re.compile(r"\d+(\.\d+)?\s*[KMGT]i?B", re.IGNORECASE)


@dataclass(frozen=True)
class ImportSummary:
    """Rows read, loaded and rejected per kind (``borrowers``, ``loans``, ``payments``), and
    the first rejections as ``(file, row, record, field, reason)``; ``seconds`` is the
    wall-clock time of the whole import."""

    import_id: str
    db: str
    read: dict[str, int] = field(default_factory=dict)
    loaded: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    rejections: list[tuple[str, int, str | None, str | None, str]] = field(default_factory=list)
    #: Field errors recorded in ``rejected_rows`` (a row may have several).
    rejection_rows_total: int = 0

    @property
    def rejections_not_listed(self) -> int:
        """Field errors in ``rejected_rows`` that :attr:`rejections` does not list."""
        return max(0, self.rejection_rows_total - len(self.rejections))

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (``repayplan import --json``)."""
        rows = sum(self.read.values())
        return {
            "import_id": self.import_id,
            "db": self.db,
            "read": self.read,
            "loaded": self.loaded,
            "rejected": self.rejected,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(rows / max(self.seconds, 1e-9)),
            "rejections": [
                dict(zip(("file", "row", "record", "field", "reason"), r, strict=True))
                for r in self.rejections
            ],
            "rejections_listed": len(self.rejections),
            "rejections_not_listed": self.rejections_not_listed,
        }


@scrub_errors
def import_files(
    db: str | Path = DEFAULT_DB,
    borrowers: str | Path | None = None,
    loans: str | Path | None = None,
    payments: str | Path | None = None,
    *,
    rate_cap_percent: Decimal | float | str = DEFAULT_RATE_CAP_PERCENT,
    as_of: date | None = None,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
) -> ImportSummary:
    """Validate and load the given files into ``db``; see :mod:`repayplan.store.importer`.

    ``rate_cap_percent``: loans above this annual rate (percent) are rejected. ``as_of``
    (default today): dates after it are rejected, and loans' remaining term and next due date
    refer to it. ``memory_limit``: DuckDB's buffer-pool ceiling (a DuckDB size such as
    ``"512MB"`` or ``"2GB"``). Raises :class:`InputError` for a missing file, an unknown
    format or a missing required column; bad rows never raise, they are recorded in
    ``rejected_rows``. Every error leaves scrubbed (:func:`repayplan.errors.scrub_errors`):
    DuckDB's messages quote the raw input line, which may hold personal data.
    """
    given = {"borrowers": borrowers, "loans": loans, "payments": payments}
    files = {k: Path(v) for k, v in given.items() if v is not None}
    if not files:
        raise InputError("give at least one of --borrowers, --loans, --payments", field="files")
    for kind, path in files.items():
        if not path.is_file():
            raise InputError("no such file", field=kind, record=str(path))
    if not _SIZE.fullmatch(memory_limit.strip()):
        raise InputError(
            f"not a memory size (like 512MB or 2GB): {memory_limit!r}", field="memory_limit"
        )
    try:
        cap = Decimal(str(rate_cap_percent).strip())
    except ArithmeticError:
        text = str(rate_cap_percent)[:40]
        raise InputError(f"not a number: {text!r}", field="rate_cap") from None
    if not cap.is_finite() or not 0 <= cap <= MAX_RATE_PERCENT:
        raise InputError(
            f"must be a percentage from 0 to {MAX_RATE_PERCENT}, got {str(rate_cap_percent)[:40]}",
            field="rate_cap",
        )
    cap = Decimal(format(cap, "f"))  # plain digits in the SQL (no exponent)
    as_of = as_of or date.today()
    started = time.perf_counter()
    import_id = f"imp-{datetime.now():%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}"
    con = connect(db)
    try:
        with private_workspace(con, db, memory_limit):
            pseudo = pseudonymiser_for(con, db)
            register_tokens(con, pseudo)
            con.execute(
                "CREATE TABLE stage.errors (kind VARCHAR, row_number BIGINT, "
                "record_id VARCHAR, field VARCHAR, reason VARCHAR)"
            )
            read = {}
            steps = len(files) + 2
            for kind in KINDS:
                if kind in files:
                    progress.report("import", len(read), steps)
                    read[kind] = stage_file(con, kind, files[kind], cap, as_of)
                    check_across_rows(con, kind)
            progress.report("import", len(read), steps)
            prepare_load(con, files, as_of)
            progress.report("import", len(read) + 1, steps)
            loaded = load(con, files, import_id, as_of)
            progress.report("import", steps, steps)
            rejected = dict(
                con.execute(
                    "SELECT kind, count(DISTINCT row_number) FROM stage.errors GROUP BY 1"
                ).fetchall()
            )
        if str(db) != ":memory:":  # the committed import, for analysts (store.publish)
            publish(db, import_id, con=con)
        first = con.execute(
            "SELECT source_file, row_number, record_id, field, reason FROM rejected_rows "
            "WHERE import_id = ? ORDER BY source_file, row_number LIMIT 20",
            [import_id],
        ).fetchall()
        total = con.execute(
            "SELECT count(*) FROM rejected_rows WHERE import_id = ?", [import_id]
        ).fetchall()[0][0]
        return ImportSummary(
            import_id=import_id,
            db=str(db),
            read=read,
            loaded=loaded,
            rejected={k: rejected.get(k, 0) for k in read},
            seconds=time.perf_counter() - started,
            rejections=first,
            rejection_rows_total=total,
        )
    finally:
        con.close()
