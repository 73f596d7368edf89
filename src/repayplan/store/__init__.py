"""The DuckDB portfolio store: schema and migrations, demo portfolio, validated import,
pseudonymised personal data, and the read functions the other layers use."""

from repayplan.store.connection import DEFAULT_DB, connect
from repayplan.store.demo import DemoSummary, init_demo
from repayplan.store.importer import ImportSummary, import_files
from repayplan.store.queries import loan_for_planning, loans_for_planning

__all__ = [
    "DEFAULT_DB",
    "DemoSummary",
    "ImportSummary",
    "connect",
    "import_files",
    "init_demo",
    "loan_for_planning",
    "loans_for_planning",
]
