"""The house rules: the core (layers, models, records, registry, losses) imports torch only; the tools
import the core and never the reverse; no module imports itself through a circle; no file is too long."""

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "inception_zoo"
CORE = ("inception_zoo.layers", "inception_zoo.models", "inception_zoo.records", "inception_zoo.registry",
        "inception_zoo.losses")
CORE_MAY_IMPORT = {"torch", "__future__"} | set(sys.stdlib_module_names)
MAX_LINES = 420


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


ALL_MODULES = {_module_name(p) for p in PACKAGE.rglob("*.py")}


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside functions, relative imports resolved."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            submodules = {f"{base}.{alias.name}" for alias in node.names}  # `from . import x` names a module
            found |= submodules if submodules <= ALL_MODULES else {base}
    return found


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
EDGES = {name: {m for m in _imports(path) if m in MODULES and m != name} for name, path in MODULES.items()}


def _is_core(name: str) -> bool:
    return name.startswith(CORE)


@pytest.mark.parametrize("name", [n for n in MODULES if _is_core(n)])
def test_core_imports_torch_and_the_core_only(name):
    outside = {m.split(".")[0] for m in _imports(MODULES[name]) if not m.startswith("inception_zoo")}
    assert outside <= CORE_MAY_IMPORT, f"{name} imports {sorted(outside - CORE_MAY_IMPORT)}"
    tools = sorted(m for m in EDGES[name] if not _is_core(m) and m != "inception_zoo")
    assert not tools, f"{name} (core) imports the tools {tools}"


def test_no_import_circles():
    """Module by module, lazy imports inside functions included (a package's __init__ re-exporting its
    own modules is the one allowed way back up)."""
    def reachable(start):
        seen, todo = set(), [start]
        while todo:
            for nxt in EDGES[todo.pop()]:
                if nxt not in seen and not start.startswith(nxt + ".") and nxt != "inception_zoo":
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    circles = [name for name in MODULES if name in reachable(name)]
    assert not circles, f"modules that import themselves through others: {circles}"


def test_no_file_is_too_long():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"files over {MAX_LINES} lines: {long}"
