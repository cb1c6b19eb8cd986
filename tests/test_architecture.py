"""The import graph reads one way (issue 15).

Built with plain ``ast`` from every ``import`` / ``from ... import`` in server/, verification/
and scheduler/ — at module level, inside functions and under ``TYPE_CHECKING`` alike — with
relative imports resolved. A name imported from a package (``from server import db``) counts as
an import of the submodule when one exists, else of the package's ``__init__``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOP = ("isocheck", "server", "verification", "scheduler")


# Files allowed over MAX_LINES, each with the reason it stays one file.
MAX_LINES = 500
LONG_FILES: dict[str, str] = {
    # Translation tables: one entry per message key in both languages; splitting them would only
    # scatter one dictionary over files.
    "server/dashboard/i18n.py": "message catalogue (vi/en), data not logic",
}

# Domain packages under server/: none may import another that imports it back.
DOMAIN_PACKAGES = (
    "server.alerts",
    "server.checkins",
    "server.declarations",
    "server.notify",
    "server.people",
    "server.schedule",
    "server.fhir",
    "server.dashboard",
    "server.api",
    "server.webapp",
    "server.flows",
)


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _source_files() -> list[Path]:
    files: list[Path] = []
    for top in TOP:
        files.extend(sorted((ROOT / top).rglob("*.py")))
    return files


def _is_package(modules: set[str], name: str) -> bool:
    return any(m.startswith(name + ".") for m in modules)


def _resolve(modules: set[str], name: str) -> str | None:
    """The longest prefix of a dotted name that is one of our modules."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def build_graph() -> tuple[dict[str, set[str]], set[str]]:
    files = _source_files()
    modules = {_module_name(f) for f in files}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for path in files:
        me = _module_name(path)
        is_pkg = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = me.split(".") if is_pkg else me.split(".")[:-1]
                    if node.level > 1:
                        base = base[: len(base) - (node.level - 1)]
                    prefix = ".".join(base)
                    base_name = f"{prefix}.{node.module}" if node.module else prefix
                else:
                    base_name = node.module or ""
                for alias in node.names:
                    sub = f"{base_name}.{alias.name}"
                    targets.append(sub if sub in modules else base_name)
            for target in targets:
                resolved = _resolve(modules, target)
                if resolved and resolved != me:
                    graph[me].add(resolved)
    return graph, modules


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in graph:
                    continue
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    result.append(sorted(component))
    return sorted(result)


def _cycle_path(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One concrete loop through a component, for the failure message."""
    members = set(component)
    start = component[0]
    prev: dict[str, str] = {}
    queue = [start]
    seen = {start}
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node] & members):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(prev[path[-1]])
                return [*reversed(path), start]
            if nxt not in seen:
                seen.add(nxt)
                prev[nxt] = node
                queue.append(nxt)
    return component


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return build_graph()[0]


def test_graph_sees_our_imports(graph):
    # The checker must see what it claims to see, or the other tests pass vacuously.
    assert len(graph) > 100
    assert "verification.verifier" in graph
    assert any(graph[m] for m in graph if m.startswith("server."))
    assert "server.config" in graph["server.app"]


def test_the_cycle_finder_finds_cycles():
    # the checker itself, on a graph with one loop of three and a chain beside it
    loop = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(loop) == [["a", "b", "c"]]
    assert _cycle_path(loop, ["a", "b", "c"]) == ["a", "b", "c", "a"]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_cycles(graph):
    cycles = _cycles(graph)
    message = "\n".join(
        f"cycle of {len(c)} modules ({', '.join(c)}), e.g. " + " -> ".join(_cycle_path(graph, c))
        for c in cycles
    )
    assert not cycles, f"{len(cycles)} import cycle(s):\n{message}"


def _crossings(graph, source_prefix: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{m} -> {t}"
        for m, targets in graph.items()
        if m == source_prefix or m.startswith(source_prefix + ".")
        for t in targets
        if any(t == f or t.startswith(f + ".") for f in forbidden)
    )


def test_verification_stands_alone(graph):
    bad = _crossings(graph, "verification", ("server", "scheduler"))
    assert not bad, "verification/ imports the service:\n" + "\n".join(bad)


def test_server_does_not_import_scheduler(graph):
    bad = _crossings(graph, "server", ("scheduler",))
    assert not bad, "server/ imports scheduler/:\n" + "\n".join(bad)


def _package_of(module: str) -> str | None:
    for pkg in DOMAIN_PACKAGES:
        if module == pkg or module.startswith(pkg + "."):
            return pkg
    return None


def test_no_package_cycles(graph):
    edges: dict[tuple[str, str], list[str]] = {}
    for m, targets in graph.items():
        a = _package_of(m)
        if a is None:
            continue
        for t in targets:
            b = _package_of(t)
            if b is not None and b != a:
                edges.setdefault((a, b), []).append(f"{m} -> {t}")
    both_ways = sorted((a, b) for (a, b) in edges if a < b and (b, a) in edges)
    message = "\n".join(
        f"{a} <-> {b}:\n    " + "\n    ".join(sorted(edges[(a, b)]) + sorted(edges[(b, a)]))
        for a, b in both_ways
    )
    assert not both_ways, f"{len(both_ways)} package pair(s) import each other:\n{message}"


def test_no_long_files():
    too_long = []
    for path in _source_files():
        rel = path.relative_to(ROOT).as_posix()
        if rel in LONG_FILES:
            continue
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES:
            too_long.append(f"{rel}: {lines} lines")
    assert not too_long, f"files over {MAX_LINES} lines without a reason:\n" + "\n".join(too_long)


def test_long_file_list_is_not_stale():
    for rel in LONG_FILES:
        path = ROOT / rel
        assert path.exists(), f"{rel} is listed as long but does not exist"
        assert len(path.read_text(encoding="utf-8").splitlines()) > MAX_LINES, (
            f"{rel} is listed as long but is not; remove it from LONG_FILES"
        )


def _external_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_core_is_the_bottom_layer(graph):
    bad = sorted(
        f"{m} -> {t}"
        for m, targets in graph.items()
        if m.startswith("server.core")
        for t in targets
        if not t.startswith("server.core")
    )
    assert not bad, "server/core imports upward:\n" + "\n".join(bad)
    flask = sorted(
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "server" / "core").rglob("*.py")
        if _external_imports(path) & {"flask", "werkzeug"}
    )
    assert not flask, f"server/core must not know HTTP: {flask}"


# Entry points may use the HTTP layer's helpers; domain services, models and flows may not.
_ENTRY_FILES = ("views", "cli")


def test_domain_code_does_not_speak_http(graph):
    domain = ("alerts", "checkins", "declarations", "notify", "people", "schedule")
    bad = sorted(
        f"{m} -> {t}"
        for m, targets in graph.items()
        if m.split(".")[:2][-1] in domain
        and m.startswith("server.")
        and m.rsplit(".", 1)[-1] not in _ENTRY_FILES
        for t in targets
        if t.startswith("server.http")
    )
    assert not bad, "domain code imports the HTTP layer:\n" + "\n".join(bad)
