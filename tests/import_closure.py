"""The modules a component can import, read from the source (every `import`, also those inside functions and
under TYPE_CHECKING-free branches), and the third-party top-level modules that closure reaches."""

from __future__ import annotations

import ast
import pathlib
import sys
from collections.abc import Iterable

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIRST_PARTY = ("trading_operator", "trading_runtime", "policies", "drills", "opsctl", "infra", "devstack", "audit",
               "reports", "backtest", "modelops")


def module_file(module: str) -> pathlib.Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(module: str, path: pathlib.Path) -> set[str]:
    """Every module named by an import in this file (absolute names), skipping `if TYPE_CHECKING:` blocks."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for branch in node.orelse:
                visit(branch)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            found.add(source)
            # `from package import submodule` imports the submodule too.
            found.update(f"{source}.{alias.name}" for alias in node.names if module_file(f"{source}.{alias.name}"))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def first_party_modules(package: str) -> list[str]:
    base = ROOT / package
    return sorted(".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                  for p in base.rglob("*.py"))


def closure(roots: Iterable[str]) -> tuple[set[str], set[str]]:
    """(first-party modules reached, third-party top-level modules imported) from these modules."""
    seen: set[str] = set()
    external: set[str] = set()
    todo = list(roots)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        path = module_file(module)
        if path is None:
            continue
        # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
        parents = [".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)]
        todo.extend(parents)
        for name in imports_of(module, path):
            top = name.split(".")[0]
            if top in FIRST_PARTY:
                if module_file(name):
                    todo.append(name)
                else:  # `from pkg.mod import name`: the module is pkg.mod
                    todo.append(name.rpartition(".")[0])
            elif top and top not in sys.stdlib_module_names and top != "__future__":
                external.add(top)
    return {m for m in seen if module_file(m)}, external
