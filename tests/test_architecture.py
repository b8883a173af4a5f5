"""The package's shape, kept honest: imports point down the layers (lazy imports included),
subsystems import each other without cycles, and modules stay small."""

import ast
from collections import defaultdict
from pathlib import Path

import cvagents

PACKAGE = Path(cvagents.__file__).resolve().parent

#: lowest first; a module may import its own layer and the layers below it, never above
LAYERS: list[tuple[str, ...]] = [
    ("errors", "clock", "metric_sources", "secrets", "tracing"),
    ("config",),
    ("durability",),
    ("workspace",),
    ("llm", "models"),
    ("offline",),
    ("rollout",),
    ("planning",),
    ("execution",),
    ("run",),
    ("ui",),
    ("runner", "cli", "cli_conventions", "__main__", "__init__", "dashboard", "dashboard_data", "plots", "status"),
]
LAYER_OF = {name: i for i, names in enumerate(LAYERS) for name in names}
MAX_LINES = 450


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(PACKAGE.rglob("*.py")):
        rel = p.relative_to(PACKAGE).with_suffix("")
        out[".".join(("cvagents", *rel.parts))] = p
    return out


def _unit(module: str) -> str:
    """The subsystem (or top-level module) a dotted name belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path, module: str) -> set[str]:
    found = set()
    pkg = module.split(".")[:-1] if path.name != "__init__.py" else module.split(".")
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("cvagents")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("cvagents"):
                found.add(target)
    return found


def test_every_module_has_a_layer():
    missing = sorted({_unit(m) for m in _modules()} - set(LAYER_OF))
    assert not missing, f"give these a place in LAYERS: {missing}"


def test_imports_never_point_up_a_layer():
    wrong = []
    for module, path in _modules().items():
        here = _unit(module)
        for target in _imports(path, module):
            there = _unit(target)
            if target == "cvagents" or there not in LAYER_OF:
                continue
            if LAYER_OF[there] > LAYER_OF[here]:
                wrong.append(f"{module} imports {target} ({here} is below {there})")
    assert not wrong, "\n".join(wrong)


def test_subsystems_import_each_other_without_cycles():
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in _modules().items():
        for target in _imports(path, module):
            if target != "cvagents" and _unit(target) != _unit(module):
                graph[_unit(module)].add(_unit(target))

    def cycle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        while stack:
            node, trail = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    return [*trail, nxt]
                if nxt not in trail:
                    stack.append((nxt, [*trail, nxt]))
        return None

    cycles = [c for u in list(graph) if (c := cycle_from(u))]
    assert not cycles, f"import cycles between subsystems: {cycles[0]}"


def test_modules_stay_small():
    big = {m: n for m, p in _modules().items() if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not big, f"split these along their seams (>{MAX_LINES} lines): {big}"


def test_the_names_users_typed_before_the_move_still_import():
    from cvagents import dashboard, dashboard_data, plots, status
    from cvagents.ui import dashboard as ui_dashboard

    assert dashboard is ui_dashboard
    assert callable(dashboard.monitor_planning) and callable(dashboard.monitor_execution)
    assert callable(dashboard_data.latest_session) and callable(plots.plot_workspace)
    assert callable(status.collect_status)
