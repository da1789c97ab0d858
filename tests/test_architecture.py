"""The package's shape: no import cycles and no private names imported across modules.

Every ``import`` and ``from ... import`` counts, wherever it stands (inside functions and
``if TYPE_CHECKING:`` blocks too): a function-level import hides a cycle from Python, not from
a reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "siamese"


def _modules(root: Path) -> dict[str, Path]:
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, str | None]]:
    """``(module imported, name imported from it or None)`` for every import in a module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((alias.name, None) for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in modules:
                    found.append((submodule, None))
                elif base in modules:
                    found.append((base, alias.name))
    return found


def _graph(root: Path = PACKAGE) -> tuple[dict[str, set[str]], list[str]]:
    modules = _modules(root)
    edges: dict[str, set[str]] = {name: set() for name in modules}
    private = []
    for name, path in modules.items():
        for target, imported in _imports(name, path, modules):
            if target == name or name.startswith(target + "."):
                continue  # a module and its own package's __init__: not a cycle worth naming
            edges[name].add(target)
            if imported is not None and imported.startswith("_") and not imported.startswith("__"):
                private.append(f"{name} imports {imported} from {target}")
    return edges, private


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
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


def test_the_checker_finds_a_cycle_and_a_private_import(tmp_path: Path):
    fake = tmp_path / "siamese"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "a.py").write_text("def f():\n    from siamese import b\n")
    (fake / "b.py").write_text("from siamese.a import f\nfrom siamese.c import _hidden\n")
    (fake / "c.py").write_text("_hidden = 1\n")
    edges, private = _graph(fake)
    assert _cycles(edges) == [["siamese.a", "siamese.b"]]
    assert private == ["siamese.b imports _hidden from siamese.c"]


def test_the_package_has_no_import_cycle():
    edges, _ = _graph()
    assert len(edges) > 40  # every module was read
    assert _cycles(edges) == []


def test_no_private_name_is_imported_from_another_module():
    _, private = _graph()
    assert private == []
