"""The package's shape: no import circles in refimpl/ or conformance/, no lazy imports standing in
for a circle in refimpl/, refimpl on NumPy alone, and an oracle that never imports refimpl."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("refimpl", "conformance")
ORACLE_MODULES = ("conformance.oracle.live", "conformance.oracle.worker", "conformance.oracle.remote",
                  "conformance.oracle.fixture", "conformance.oracle.wire", "conformance.oracle.historical")


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, *, nested: bool | None = None) -> set[str]:
    """The project modules ``name`` imports (at module level, inside functions, or both when
    ``nested`` is None); ``from package import module`` counts as importing the module."""
    tree = ast.parse(MODULES[name].read_text())
    top = set(map(id, tree.body))
    found = set()
    for node in ast.walk(tree):
        if nested is not None and (id(node) not in top) != nested:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in MODULES]
            # ``from package import module`` needs the module; the package only if it takes a name from it
            targets = modules + ([node.module] if len(modules) < len(node.names) else [])
        else:
            continue
        found |= {t for t in targets if t in MODULES and t != name}
    # `if TYPE_CHECKING:` blocks never run
    return found - _type_checking_only(tree)


def _type_checking_only(tree: ast.Module) -> set[str]:
    out = set()
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for sub in ast.walk(node):
                if isinstance(sub, ast.ImportFrom) and sub.module:
                    out |= {sub.module} | {f"{sub.module}.{a.name}" for a in sub.names}
    return out


GRAPH = {name: _imports(name) for name in MODULES}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_imports_another_in_a_circle(package):
    graph = {k: {v for v in vs if v.startswith(package) and v != package} for k, vs in GRAPH.items()
             if k.startswith(package) and k != package}  # a package's __init__ re-exports: not a circle
    cycle = _cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_refimpl_imports_its_own_modules_at_the_top_only():
    lazy = {name: sorted(_imports(name, nested=True)) for name in MODULES if name.startswith("refimpl")}
    assert not {k: v for k, v in lazy.items() if v}, lazy


def test_refimpl_depends_on_numpy_alone():
    """numpy at the top; ml_dtypes (bfloat16) only inside the one function that needs it, so a
    reader without it can use every other dtype."""
    top, nested = set(), set()
    for name, path in MODULES.items():
        if name.startswith("refimpl"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, (ast.Import, ast.ImportFrom)) and getattr(node, "level", 0) == 0:
                    names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                    found = {n.split(".")[0] for n in names} - set(sys.stdlib_module_names)
                    (top if node in tree.body else nested).update((name, n) for n in found)
    assert {n for _, n in top} <= {"numpy", "refimpl"}, top
    assert nested <= {("refimpl.base", "ml_dtypes")}, nested


def _reachable(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        parents = [".".join(node.split(".")[:i]) for i in range(1, node.count(".") + 1)]
        todo += list(GRAPH.get(node, ())) + [p for p in parents if p in MODULES]
    return seen


@pytest.mark.parametrize("module", ORACLE_MODULES)
def test_the_oracle_never_imports_the_reference_implementation(module):
    reached = _reachable(module)
    assert not {m for m in reached if m.split(".")[0] == "refimpl" or m == "conformance.adapters.refimpl_adapter"}, \
        sorted(reached)


def test_the_oracle_imports_with_refimpl_unimportable():
    code = ("import importlib.abc, sys\n"
            "class Block(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path, target=None):\n"
            "        if name.split('.')[0] == 'refimpl': raise ImportError('blocked: ' + name)\n"
            "sys.meta_path.insert(0, Block())\n"
            + "".join(f"import {m}\n" for m in ORACLE_MODULES))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def _documented_order() -> list[str]:
    """The entries of conformance/__init__.py's layer list, top to bottom ("oracle" for oracle/)."""
    import re

    doc = ast.get_docstring(ast.parse(MODULES["conformance"].read_text()))
    return [m.group(1) for m in re.finditer(r"^    (\w+)(?:\.py|/)", doc, re.MULTILINE)]


def test_conformance_modules_import_only_what_its_docstring_lists_above_them():
    order = _documented_order()
    entry = lambda name: name.split(".")[1] if name.count(".") else None  # noqa: E731
    listed = {n for n in MODULES if n.startswith("conformance.")}
    missing = {entry(n) for n in listed} - {"__main__"} - set(order)
    assert not missing, f"modules the docstring does not list: {missing}"
    upward = [(n, i) for n in listed for i in GRAPH[n] if i.startswith("conformance.") and entry(i) != entry(n)
              and entry(n) in order and order.index(entry(i)) > order.index(entry(n))]
    assert not upward, upward


# Test modules left out of the mutation run's selection (pyproject.toml [tool.mutmut]), and why:
# they do not test refimpl's numbers or API, or they need Keras.
NOT_MUTATION_TESTED = {
    "test_adapters.py": "the adapters' contract", "test_cli.py": "the CLI", "test_conventions.py": "convention tables",
    "test_gpu.py": "cuDNN eligibility rules", "test_harness.py": "the harness", "test_layout.py": "this file",
    "test_matrix_strength.py": "the matrix's strength, not refimpl's", "test_packaging.py": "the wheel (minutes)",
    "test_readme.py": "the README", "test_report_html.py": "the HTML report", "test_strategies.py": "strategies",
}


def test_every_test_module_of_refimpl_is_in_the_mutation_run():
    """A new Keras-free test file joins the mutation selection or this list with a reason: a killer
    left out of the selection looks like a survivor (docs/mutation.md)."""
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    mutmut = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    selection = mutmut["pytest_add_cli_args_test_selection"]
    selected = {Path(p).name for p in selection}
    modules = {p.name for p in (ROOT / "tests").glob("test_*.py")}
    assert selected <= modules, f"the selection names missing files: {sorted(selected - modules)}"
    assert not selected & set(NOT_MUTATION_TESTED)
    assert modules - selected == set(NOT_MUTATION_TESTED), sorted(modules - selected - set(NOT_MUTATION_TESTED))
