"""MkDocs hook: the reference pages' generated parts, built from the code at every build.

A page asks for a part with a marker line, ``<!-- generated: NAME -->``:

- ``cli``: every ``repayplan`` command, from the Typer app (usage, help, every option with its
  type and default) — the page cannot drift from the program;
- ``schema``: every table and view with its columns, and the ENUM types and macros, read from
  a database the build creates with the store's own migrations; a table or view that the
  page does not describe (its name in backticks above the marker) is a warning, so
  ``mkdocs build --strict`` fails until it is described;
- ``strategies``: the solver registry's names, descriptions and declared capabilities;
- ``policy``: the default policy every new database starts with; a key the page does not
  describe is a warning too;
- ``results FILE | COMMAND``: the figures of ``benchmarks/results/FILE`` as a table, headed
  by the command that produced them and the machine it ran on (a missing file is a warning).

It also drops the Sphinx role prefixes (":func:") the docstrings leave in the API pages.
Nothing here touches the network or the project's data files.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.plugins.repayplan")

MARKER = re.compile(r"^<!-- generated: ([a-z_-]+)(?: (.+?))? -->$", re.MULTILINE)
RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ").strip()


def _table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# --- the command line ---------------------------------------------------------------------------


def _type_name(param: Any) -> str:
    if getattr(param, "is_flag", False):
        return "flag"
    if hasattr(param, "type"):  # plain click
        return param.type.name.lower()
    annotation = param.type_descriptor.annotation  # typer's own parameters
    return {"str": "text", "int": "integer", "float": "number", "Path": "path"}.get(
        getattr(annotation, "__name__", ""), str(annotation).replace("typing.", "")
    )


def _param_rows(command: Any) -> list[tuple[str, str, str, str]]:
    rows = []
    for param in command.params:
        if getattr(param, "hidden", False):
            continue
        if param.param_type_name == "argument":
            name = f"`{(param.metavar or param.name).upper()}`"
        else:
            name = " / ".join(f"`{n}`" for n in [*param.opts, *param.secondary_opts])
        default = "required" if param.required else _default(param)
        rows.append((name, _type_name(param), default, getattr(param, "help", None) or ""))
    return rows


def _default(param: Any) -> str:
    value = param.default
    if value is None or value is False or callable(value):
        return ""
    if getattr(param, "is_flag", False) and value is True:
        return "on"
    return f"`{value}`"


def _commands(group: Any, ctx: Any, prefix: str) -> Iterable[tuple[str, Any, Any]]:
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        sub = type(ctx)(command, info_name=name, parent=ctx)
        path = f"{prefix} {name}"
        if hasattr(command, "list_commands"):
            yield path, command, sub
            yield from _commands(command, sub, path)
        else:
            yield path, command, sub


def cli_reference() -> str:
    """Markdown for every command of the ``repayplan`` app."""
    import typer

    from repayplan.cli import app

    root = typer.main.get_command(app)
    ctx = root.make_context("repayplan", [], resilient_parsing=True)
    parts = []
    for path, command, sub in _commands(root, ctx, "repayplan"):
        usage = " ".join([path, *command.collect_usage_pieces(sub)])
        text = (command.help or "").strip()
        parts.append(f"## `{path}`\n\n{text}\n\n```text\n{usage}\n```")
        if hasattr(command, "list_commands"):
            subs = ", ".join(f"`{path} {n}`" for n in command.list_commands(sub))
            parts.append(f"Commands: {subs}.")
            continue
        rows = _param_rows(command)
        if rows:
            parts.append(_table(("option", "type", "default", "what"), rows))
    return "\n\n".join(parts)


# --- the database schema ------------------------------------------------------------------------


def _schema_database() -> Any:
    import duckdb

    from repayplan.store.schema import migrate

    con = duckdb.connect()
    migrate(con)
    return con


def schema_reference(described: str) -> str:
    """Markdown for every table and view of a freshly migrated database; warns for any that
    ``described`` (the page's text) does not mention in backticks."""
    con = _schema_database()
    try:
        objects = con.execute(
            "SELECT table_name, table_type FROM information_schema.tables "
            "WHERE table_schema = 'main' ORDER BY table_type, table_name"
        ).fetchall()
        keys = {
            (table, column)
            for table, columns in con.execute(
                "SELECT table_name, constraint_column_names FROM duckdb_constraints() "
                "WHERE constraint_type = 'PRIMARY KEY'"
            ).fetchall()
            for column in columns
        }
        parts = []
        for name, kind in objects:
            if f"`{name}`" not in described:
                log.warning("docs/reference/schema.md does not describe the %s %r", kind, name)
            columns = con.execute(
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
                [name],
            ).fetchall()
            label = "view" if kind == "VIEW" else "table"
            rows = [
                (
                    f"`{col}`" + (" (key)" if (name, col) in keys else ""),
                    f"`{dtype}`",
                    "" if nullable == "YES" or kind == "VIEW" else "not null",
                )
                for col, dtype, nullable in columns
            ]
            parts.append(f"### `{name}` ({label})\n\n" + _table(("column", "type", ""), rows))
        enums = con.execute(
            "SELECT type_name FROM duckdb_types() WHERE logical_type = 'ENUM' "
            "AND schema_name = 'main' AND NOT internal ORDER BY type_name"
        ).fetchall()
        enum_rows = []
        for (type_name,) in enums:
            values = con.execute(f'SELECT enum_range(NULL::"{type_name}")').fetchone()[0]
            enum_rows.append((f"`{type_name}`", ", ".join(f"`{v}`" for v in values)))
        macros = con.execute(
            "SELECT DISTINCT function_name, parameters FROM duckdb_functions() "
            "WHERE function_type IN ('macro', 'table_macro') AND schema_name = 'main' "
            "AND NOT internal ORDER BY function_name"
        ).fetchall()
        version = con.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]
    finally:
        con.close()
    head = (
        f"Generated from a database the docs build creates with the store's migrations "
        f"(schema version {version})."
    )
    out = [head, "## Tables and views", *parts]
    out += ["## ENUM types", _table(("type", "values"), enum_rows)]
    out += [
        "## Macros",
        _table(("macro", "parameters"), [(f"`{n}`", ", ".join(p)) for n, p in macros]),
    ]
    return "\n\n".join(out)


# --- solver strategies and the default policy ---------------------------------------------------


def strategies_reference() -> str:
    """Markdown table of the solver registry."""
    from repayplan.plans.strategies import get_strategy, strategy_names

    def yes(flag: bool) -> str:
        return "yes" if flag else "no"

    rows = []
    for name in strategy_names():
        strategy = get_strategy(name)
        caps = strategy.capabilities
        limit = ""
        if caps.max_integer_vars is not None or caps.max_mip_vars is not None:
            limit = f"≤ {caps.max_integer_vars} integer / {caps.max_mip_vars} columns"
        rows.append(
            (
                f"`{name}`",
                strategy.description,
                yes(caps.exact),
                yes(caps.lp),
                yes(caps.milp) + (f" ({limit})" if limit else ""),
                yes(caps.duals),
                yes(caps.batch),
                yes(caps.integer_only),
            )
        )
    return _table(
        ("`--solver`", "what", "exact", "LP", "MILP", "duals", "threads", "integer-only"), rows
    )


def policy_reference(described: str) -> str:
    """Markdown table of ``DEFAULT_POLICY``; warns for a key the page does not mention."""
    from repayplan.store.schema import DEFAULT_POLICY

    rows = []
    for key, value in DEFAULT_POLICY.items():
        if f"`{key}`" not in described:
            log.warning("docs/reference/policy.md does not describe the policy key %r", key)
        rows.append((f"`{key}`", f"`{json.dumps(value)}`"))
    return _table(("key", "default (`default-v1`)"), rows)


# --- benchmark results -------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e7):
            return f"{value:.2e}"
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _flat(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        elif not isinstance(value, list):
            out[f"{prefix}{key}"] = value
    return out


def results_reference(arg: str | None) -> str:
    """A results file's figures, with the command that produced them."""
    if not arg or "|" not in arg:
        log.warning("a results marker needs 'FILE | COMMAND', got %r", arg)
        return ""
    name, command = (part.strip() for part in arg.split("|", 1))
    path = RESULTS / name
    if not path.is_file():
        log.warning("benchmarks/results/%s does not exist", name)
        return ""
    data = json.loads(path.read_text())
    machine = data.get("machine") or data.get("meta") or {}
    when = data.get("created") or data.get("run_at") or name.rsplit("-", 1)[-1][:-5]
    load = machine.get("load_average") or machine.get("load_average_1min")
    if isinstance(load, list):
        load = load[0]
    head = (
        f"`{command}` → `benchmarks/results/{name}` ({when}; {machine.get('cpus', '?')} CPUs"
        + (f", load average {load:.1f}" if isinstance(load, (int, float)) else "")
        + ")"
    )
    listed = next(
        (data[k] for k in ("rows", "runs", "strategies") if isinstance(data.get(k), list)), None
    )
    if listed:
        rows = [_flat(r) for r in listed]
        columns = list(dict.fromkeys(c for r in rows for c in r))
        if len(columns) <= 9:
            body = _table(columns, [[_fmt(r.get(c, "")) for c in columns] for r in rows])
        else:  # wide records read better one column each
            head_row = [columns[0], *(_fmt(r.get(columns[0], "")) for r in rows)]
            body = _table(
                head_row, [[f"`{c}`", *(_fmt(r.get(c, "")) for r in rows)] for c in columns[1:]]
            )
    else:
        flat = {k: v for k, v in _flat(data).items() if not k.startswith(("machine", "meta"))}
        body = _table(("figure", "value"), [(f"`{k}`", _fmt(v)) for k, v in flat.items()])
    return head + "\n\n" + body


GENERATORS: dict[str, Callable[[str, str | None], str]] = {
    "cli": lambda text, arg: cli_reference(),
    "schema": lambda text, arg: schema_reference(text),
    "strategies": lambda text, arg: strategies_reference(),
    "policy": lambda text, arg: policy_reference(text),
    "results": lambda text, arg: results_reference(arg),
}


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace each ``<!-- generated: NAME [ARG] -->`` line by what its generator writes."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            log.warning("%s asks for an unknown generated part %r", page.file.src_path, name)
            return match.group(0)
        return GENERATORS[name](markdown[: match.start()], match.group(2))

    return MARKER.sub(replace, markdown)


# The docstrings use Sphinx roles (":func:`name`"); the API pages show the name alone.
SPHINX_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|attr|data|exc|obj):(?=<code>)")


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    """Drop Sphinx role prefixes left in front of code spans by docstrings."""
    return SPHINX_ROLE.sub("", html)
