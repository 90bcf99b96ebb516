"""The house rules CI enforces on the package's shape: small modules, module-level imports, no import cycles.

The layer contract itself (specs -> costs -> serving -> calibration -> prediction -> API -> CLI) is
import-linter's, configured in pyproject.toml and run by ``.ci/run`` (``lint-imports``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "perfsim"
#: no module of the package grows past this many lines (split it by responsibility first)
MAX_MODULE_LINES = 400
#: heavy optional dependencies that may be imported inside functions, so that the CLI starts fast
HEAVY_IMPORTS = {"scipy", "matplotlib", "torch", "pandas", "dask", "distributed", "ray", "tqdm", "IPython"}


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """Dotted names an import statement refers to (relative imports resolved)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[: len(package) - node.level + 1]
        base = ".".join([*package, base] if base else package)
    return [f"{base}.{alias.name}" for alias in node.names] + [base]


def imports(path: Path, module: str) -> tuple[set[str], list[tuple[int, str]]]:
    """(names imported at module level, [(line, name)] imported inside functions)."""
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    top: set[str] = set()
    local: list[tuple[int, str]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                names = _imported(child, module, is_package)
                if in_function:
                    local.extend((child.lineno, n) for n in names[:1])
                else:
                    top.update(names)
            visit(
                child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            )

    visit(tree, False)
    return top, local


def internal_graph() -> dict[str, set[str]]:
    """Module-level imports between the package's own modules."""
    mods = modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        top, _ = imports(path, name)
        graph[name] = {t for t in top if t in mods and t != name}
    return graph


def test_no_module_is_over_the_size_limit():
    big = {
        name: n
        for name, path in modules().items()
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not big, f"modules over {MAX_MODULE_LINES} lines: {big}"


def test_function_local_imports_only_for_heavy_optional_dependencies():
    offenders = []
    for name, path in modules().items():
        _, local = imports(path, name)
        offenders += [
            f"{path.name}:{line} {imported}"
            for line, imported in local
            if imported.split(".")[0] not in HEAVY_IMPORTS
        ]
    assert not offenders, "imports inside functions (move them to the top of the module): " + ", ".join(
        offenders
    )


def test_there_are_no_import_cycles():
    graph = internal_graph()
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            pytest.fail("import cycle: " + " -> ".join(cycle))


def test_the_checks_see_imports():
    """Guard against a checker that finds nothing: known edges and a known heavy local import are seen."""
    graph = internal_graph()
    assert "perfsim.costs.attention.registry" in graph["perfsim.costs.attention.mla"]
    assert "perfsim.serving.scheduler" in graph["perfsim.serving.engine"]
    _, local = imports(PACKAGE / "calibration" / "fit.py", "perfsim.calibration.fit")
    assert any(name.startswith("scipy") for _, name in local)


def _record_classes() -> set[str]:
    """Names of the package's dataclasses and pydantic models."""
    names = set()
    for path in modules().values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                decorators = [ast.unparse(d) for d in node.decorator_list]
                bases = [ast.unparse(b) for b in node.bases]
                if any("dataclass" in d for d in decorators) or "BaseModel" in bases:
                    names.add(node.name)
    return names


def test_records_are_built_by_keyword():
    records = _record_classes()
    assert {"OpTime", "BatchStats", "StepCost", "Deployment"} <= records
    positional = []
    for path in modules().values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and len(node.args) > 1:
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                if name in records:
                    positional.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {name}")
    assert not positional, "records built with positional arguments: " + ", ".join(positional)
