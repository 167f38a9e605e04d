"""The shape of the package, read from its source: no import cycles, no hidden imports.

The graph is built with `ast` from every module under src/metamedia, counting every import —
module-level, inside functions and under `if TYPE_CHECKING:` alike — so an import moved into a
function or behind TYPE_CHECKING cannot hide a cycle. Nodes are the first-level parts of the
package (`metamedia.search`, `metamedia.engine`, ...); inside each part, modules may not form cycles
either. An import inside a function is allowed only with a comment on that line, or above that block of
imports, that starts with `# deferred:` and says which heavy or optional dependency it defers.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "src" / "metamedia"


@dataclass(frozen=True)
class Import:
    source: str  # importing module, e.g. metamedia.search.pipeline
    target: str  # imported module, e.g. metamedia.engine
    line: int
    in_function: bool


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE_ROOT.rglob("*.py"))}


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    in_function: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            in_function.update(id(n) for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom))
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            targets = [module] + [f"{module}.{a.name}" for a in node.names if f"{module}.{a.name}" in modules]
        else:
            continue
        for target in targets:
            if target == "metamedia" or target.startswith("metamedia."):
                found.append(Import(name, target, node.lineno, id(node) in in_function))
    return found


def every_import() -> list[Import]:
    modules = all_modules()
    return [imp for name, path in modules.items() for imp in imports_of(name, path, modules)]


def part(module: str) -> str:
    return ".".join(module.split(".")[:2])


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def edges_between_parts() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for imp in every_import():
        src, dst = part(imp.source), part(imp.target)
        if src != dst and dst != "metamedia":
            graph[src].add(dst)
    return graph


def test_the_graph_sees_imports_inside_functions_and_type_checking_blocks() -> None:
    """The checker itself: it must see the engine importing services and catalog writes."""
    graph = edges_between_parts()
    assert "metamedia.search" in graph["metamedia.engine"]
    assert {"metamedia.api", "metamedia.mcp"} <= set(graph)
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_between_packages() -> None:
    found = cycles(edges_between_parts())
    details = {
        " <-> ".join(c): sorted(
            f"{i.source}:{i.line} -> {i.target}"
            for i in every_import()
            if part(i.source) in c and part(i.target) in c and part(i.source) != part(i.target)
        )
        for c in found
    }
    assert not found, f"import cycles between packages: {details}"


def test_no_import_cycle_between_modules_of_a_package() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    modules = all_modules()
    for imp in every_import():
        if imp.target in modules and imp.target != imp.source and part(imp.source) == part(imp.target):
            # a package's __init__ re-exports its modules; importing it is not a dependency of theirs
            if modules[imp.target].name == "__init__.py":
                continue
            graph[imp.source].add(imp.target)
    assert not cycles(graph)


def test_imports_inside_functions_say_what_they_defer() -> None:
    unexplained = []
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for inner in ast.walk(node):
                if not isinstance(inner, ast.Import | ast.ImportFrom):
                    continue
                here, above = lines[inner.lineno - 1], inner.lineno - 2
                while not lines[above].strip() or lines[above].strip().startswith(("import ", "from ")):
                    above -= 1  # one comment may explain a block of imports
                if "# deferred:" not in here and not lines[above].strip().startswith("# deferred:"):
                    unexplained.append(
                        f"{path.relative_to(PACKAGE_ROOT.parent)}:{inner.lineno}: {here.strip()}"
                    )
    assert not sorted(set(unexplained)), (
        "imports inside functions without a '# deferred:' reason:\n" + "\n".join(sorted(set(unexplained)))
    )
