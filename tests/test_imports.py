"""The import graph of ``src/repayplan`` runs one way: no cycles, no layer importing a higher one.

Imports are read from the source with :mod:`ast` (nothing is imported), including the ones
inside functions: a lazy import is still a dependency. The layers are the design's table
(docs/explanation/architecture.md): a module may import its own layer and the layers below.
A new top-level module or package must be given a layer in :data:`LAYERS`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "repayplan"

#: Top-level modules/packages of ``repayplan`` by layer, lowest first. ``errors``,
#: ``leftovers`` and ``progress`` are below everything (every layer may use them). Layers
#: not written yet (``offers``, ``service``) are listed so that they land in the right place.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "leftovers", "progress"),  # cross-cutting: errors, owned files, progress
    ("store",),
    ("finance",),
    ("risk",),
    ("plans",),
    ("portfolio",),
    ("offers",),
    ("simulate",),
    ("cli", "flows", "service", "report", "demo", "prefect_env"),
)
LAYER_OF = {name: level for level, names in enumerate(LAYERS) for name in names}

#: What the design's table says each layer knows nothing of, checked by name on top of the
#: order (the order already implies it; these say it in the design's words).
FORBIDDEN = {
    "store": ("plans", "portfolio", "risk", "finance"),
    "finance": ("store", "risk", "plans", "portfolio"),
    "risk": ("plans", "portfolio"),
    "plans": ("store", "portfolio", "flows", "cli"),
    "portfolio": ("cli", "flows", "prefect_env"),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str | None:
    if not node.level:
        return node.module
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def import_graph() -> dict[str, set[str]]:
    """Module → the ``repayplan`` modules it imports anywhere in its source."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(name, path, node)
                if target is None:
                    continue
                targets.add(target)
                # ``from package import module`` imports the module.
                targets.update(f"{target}.{alias.name}" for alias in node.names)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_the_graph_is_read() -> None:
    graph = import_graph()
    assert "repayplan.plans.strategies.registry" in graph
    assert "repayplan.plans.strategies.base" in graph["repayplan.plans.strategies.registry"]


def test_import_graph_has_no_cycles() -> None:
    cycles = _cycles(import_graph())
    assert not cycles, "import cycles (each a set of modules importing each other): " + "; ".join(
        " ↔ ".join(c) for c in cycles
    )


def test_every_top_level_module_has_a_layer() -> None:
    unknown = sorted({_top(m) for m in _modules() if m != "repayplan"} - set(LAYER_OF))
    assert not unknown, f"give {unknown} a layer in tests/test_imports.py LAYERS"


def test_lower_layers_do_not_import_higher_ones() -> None:
    wrong = []
    for module, targets in import_graph().items():
        if module == "repayplan":
            continue
        here = _top(module)
        for target in sorted(targets):
            there = _top(target)
            if there == "repayplan":
                continue
            if LAYER_OF.get(there, -1) > LAYER_OF.get(here, len(LAYERS)):
                wrong.append(f"{module} ({here}) imports {target} ({there})")
            elif there in FORBIDDEN.get(here, ()):
                wrong.append(f"{module} ({here}) imports {target}: {here} knows nothing of {there}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("module", "must_not_import"),
    [
        ("repayplan.portfolio.replan", "repayplan.flows.nightly"),
        ("repayplan.store.nightly_schema", "repayplan.store.schema"),
        ("repayplan.plans.strategies.base", "repayplan.plans.strategies.registry"),
    ],
)
def test_the_three_old_circles_stay_open(module: str, must_not_import: str) -> None:
    assert must_not_import not in import_graph()[module]


#: The importer's modules in the order of its pipeline (``store/importer/__init__.py``).
IMPORTER_PIPELINE = (
    "columns", "tokenise", "staging", "validate", "read", "frames", "contracts", "upsert",
    "record", "load", "pipeline",
)  # fmt: skip


def test_the_importer_reads_as_its_pipeline() -> None:
    """Every module of ``store/importer/`` is in :data:`IMPORTER_PIPELINE` and imports only
    the modules before it (the package's ``__init__`` re-exports; nothing imports it back)."""
    package = "repayplan.store.importer"
    graph = import_graph()
    found = {m.removeprefix(f"{package}.") for m in graph if m.startswith(f"{package}.")}
    assert found == set(IMPORTER_PIPELINE), "list the importer's modules in IMPORTER_PIPELINE"
    wrong = []
    for position, name in enumerate(IMPORTER_PIPELINE):
        for target in sorted(graph[f"{package}.{name}"]):
            if target == package or target.startswith(f"{package}."):
                there = target.removeprefix(f"{package}.")
                if target == package or IMPORTER_PIPELINE.index(there) >= position:
                    wrong.append(f"{name} imports {there or package} (not before it)")
    assert not wrong, "\n".join(wrong)
