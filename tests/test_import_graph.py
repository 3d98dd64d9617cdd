"""The package's modules import each other without cycles, and the domain packages do not
reach into the configuration.

Why: a module should be readable with its imports alone, not the whole tree; and with a cycle,
import order matters (a module may run while the one it imports back is half executed).
The graph counts every import, also those inside functions or under TYPE_CHECKING: a lazy
import hides a dependency, it does not remove it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

SOURCE = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "ssformer_repro"
DOMAIN_PACKAGES = ("training", "models", "polyps", "evaluation")


def module_name(path: Path) -> str:
    """`src/ssformer_repro/a/b.py` -> `ssformer_repro.a.b`; a package's `__init__` is the package."""
    parts = path.relative_to(SOURCE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def parents(name: str) -> list[str]:
    """`a.b.c` -> [`a`, `a.b`]."""
    parts = name.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts))]


def within(module: str, package: str) -> bool:
    """Whether `module` is `package` or one of its modules."""
    return module == package or module.startswith(f"{package}.")


def import_graph() -> nx.DiGraph:
    """Module -> module it imports, for every module of the package."""
    files = {module_name(path): path for path in sorted((SOURCE / PACKAGE).rglob("*.py"))}
    graph = nx.DiGraph()
    graph.add_nodes_from(files)
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        # A module depends on each module its imports name, even its own package (`from . import
        # nodes` reads it, half executed if it imports this module), and on the packages whose
        # `__init__` they run, except its own parents: those are already being imported.
        named: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                named |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = package.rsplit(".", node.level - 1)[0] if node.level else ""
                source = ".".join(filter(None, [base, node.module]))
                named |= {source} | {f"{source}.{alias.name}" for alias in node.names}
        ran = {parent for target in named for parent in parents(target)} - set(parents(name))
        graph.add_edges_from((name, target) for target in (named | ran) - {name} if target in files)
    return graph


def ring(cycle: list[str]) -> str:
    """`[b, a]` -> `a -> b -> a`, from its first module in sorted order for a stable message."""
    start = cycle.index(min(cycle))
    return " -> ".join(cycle[start:] + cycle[: start + 1])


def test_no_import_cycles() -> None:
    cycles = sorted(ring(cycle) for cycle in nx.simple_cycles(import_graph()))
    assert not cycles, f"{len(cycles)} import cycles:\n" + "\n".join(cycles)


def test_domain_packages_do_not_import_config() -> None:
    domain = [f"{PACKAGE}.{package}" for package in DOMAIN_PACKAGES]
    imports = sorted(
        f"{module} -> {target}"
        for module, target in import_graph().edges
        if any(within(module, package) for package in domain)
        and within(target, f"{PACKAGE}.config")
    )
    assert not imports, "domain modules importing the configuration:\n" + "\n".join(imports)
