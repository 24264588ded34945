"""The package's layout rules, enforced: imports run one way down the layers (no cycle, not even
through a function-level import) and no module grows past 400 lines (DESIGN.md, "Layout")."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "stackelberg_mop"
#: the layers, lowest first: a module may import its own layer and the layers below, never above
LAYERS = (
    ("_validate", "_version", "_system", "options", "argparsing", "cache"),
    ("cases",),
    ("data",),
    ("market",),
    ("powerflow",),
    ("scoring",),
    ("envs",),
    ("bilevel",),
    ("algorithms",),
    ("papers",),
    ("policies",),
    ("runner",),
    ("rl",),
    ("cli",),
)
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Every module's imports of the package's modules, wherever they are written (function bodies too)."""

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    edges = {}
    for name, path in modules.items():
        base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                prefix = ".".join(base[:len(base) - node.level + 1]) if node.level else ""
                module = ".".join(p for p in (prefix, node.module or "") if p)
                targets = [f"{module}.{a.name}" for a in node.names]
            else:
                continue
            found |= {t for t in map(resolve, targets) if t and t != name and t.startswith(PACKAGE.name)}
        edges[name] = found
    return edges


def _layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return len(LAYERS)  # the package itself: the public API, on top
    for rank, names in enumerate(LAYERS):
        if parts[1] in names:
            return rank
    raise AssertionError(f"{module}: in no layer of LAYERS; add it to the layer it belongs to")


def test_imports_run_down_the_layers():
    edges = _imports(_modules())
    upward = sorted(f"{m} -> {t}" for m, targets in edges.items() for t in targets if _layer(t) > _layer(m))
    assert not upward, "imports against the layers:\n" + "\n".join(upward)


def test_no_import_cycle():
    edges = _imports(_modules())
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])


def test_no_module_over_the_limit():
    long = {name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by job): {long}"


def test_the_checks_see_function_level_imports():
    # the rules above are only as good as the import scan: it must see an import inside a function
    edges = _imports(_modules())
    assert "stackelberg_mop.runner.benchmark" in edges["stackelberg_mop.runner.optima"]
    assert _layer("stackelberg_mop.rl.common") > _layer("stackelberg_mop.runner.benchmark")
