"""The layout the code promises in docs/architecture.md: the stage graph matches the imports, no stage imports the
CLI/pipeline layer, no private name crosses a module boundary, one PathSolver call site, constants in one place."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STAGES = ("ingest", "render", "datasets", "baselines", "catalog")
DOC = REPO / "docs" / "architecture.md"


def _block(name: str) -> str:
    m = re.search(rf"```{name}\n(.*?)```", DOC.read_text(), re.S)
    assert m, f"docs/architecture.md has no ```{name} block"
    return m.group(1)


def _graph() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for line in _block("stage-graph").strip().splitlines():
        src, _, dst = line.partition(":")
        out[src.strip()] = set(dst.split())
    return out


def _core() -> set[str]:
    return set(_block("core").split())


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the import root."""
    mods = {}
    for folder in ("twin", *STAGES):
        for f in sorted((REPO / folder).rglob("*.py")):
            rel = f.relative_to(REPO / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            base = ["twin"] if folder == "twin" else ["twin", folder]
            mods[".".join(base + parts)] = f
    return mods


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, list[str], int]]:
    """(imported module, imported names, line) of every import in the file, relative imports resolved."""
    tree = ast.parse(path.read_text(), str(path))
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                mod = ".".join(base + ([mod] if mod else []))
            out.append((mod, [a.name for a in node.names], node.lineno))
    return out


def _kind(mod: str) -> str:
    """'core', 'twin' (the CLI/pipeline layer) or the stage ('render', or 'render.solver' for one module)."""
    parts = mod.split(".")
    if len(parts) >= 2 and parts[1] in STAGES:
        return ".".join(parts[1:3])
    return "core" if mod in _core() else "twin"


def _targets(mod: str, names: list[str]) -> list[str]:
    """The twin modules an import statement reaches (``from twin import cluster`` reaches twin.cluster)."""
    if mod != "twin" and not mod.startswith("twin."):
        return []
    subs = [f"{mod}.{n}" for n in names if f"{mod}.{n}" in MODULES]
    return subs or [mod]


def _edges():
    """(importer, importer kind, imported module, imported kind, line) over the whole import root."""
    for name, path in MODULES.items():
        src = _kind(name)
        for mod, names, line in _imports(name, path):
            for tgt in _targets(mod, names):
                yield name, src, tgt, _kind(tgt), line


def _stage(kind: str) -> str:
    return kind.split(".")[0]


#: the imports of a stage by a core module, each inside a function (docs/architecture.md, "Core modules")
CORE_LAZY = {("twin", "twin.datasets.access"), ("twin.config", "twin.datasets.registry")}


def _function_import_lines(path: Path) -> set[int]:
    lines = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines |= {n.lineno for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom)}
    return lines


def test_core_modules_exist_and_import_no_stage():
    for m in _core():
        assert m in MODULES, f"core module {m} listed in docs/architecture.md does not exist"
    bad = []
    for s, sk, t, tk, ln in _edges():
        if sk != "core" or tk == "core":
            continue
        if (s, t) in CORE_LAZY and ln in _function_import_lines(MODULES[s]):
            continue
        bad.append((s, t, ln))
    assert not bad, f"core modules import stages or the CLI layer: {bad}"


def test_stage_graph_matches_imports():
    graph = _graph()
    assert set(graph) == {*STAGES, "twin"}
    seen: dict[str, set[str]] = {k: set() for k in graph}
    bad = []
    for s, sk, t, tk, ln in _edges():
        src = _stage(sk) if sk != "core" else None
        if src is None or tk == "core" or _stage(tk) == src:
            continue
        if src == "twin":
            seen["twin"].add(_stage(tk))
            continue
        allowed = graph[src]
        if tk == "twin":
            bad.append(f"{s}:{ln} imports {t} (the CLI/pipeline layer)")
        elif _stage(tk) in allowed:
            seen[src].add(_stage(tk))
        elif tk in allowed:
            seen[src].add(tk)
        else:
            bad.append(f"{s}:{ln} imports {t}: {src} -> {tk} is not in the stage graph")
    assert not bad, "\n".join(bad)
    assert seen == graph, f"the stage graph lists edges no module uses (or misses some): {seen} vs {graph}"


def test_no_stage_imports_the_cli_layer():
    layer = {"twin.pipeline", "twin.cli", "twin.bench", "twin.presets"}
    bad = [(s, t) for s, sk, t, tk, ln in _edges() if sk != "twin" and sk != "core" and t in layer]
    assert not bad
    assert "twin.presets" not in MODULES  # city presets live in twin.ingest.cities


def test_no_private_names_across_modules():
    bad = []
    for name, path in MODULES.items():
        for mod, names, line in _imports(name, path):
            if not (mod == "twin" or mod.startswith("twin.")) or mod == name:
                continue
            priv = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if priv:
                bad.append(f"{name}:{line} imports {', '.join(priv)} from {mod}")
    assert not bad, "\n".join(bad)


def _calls(path: Path, func: str) -> list[int]:
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            n = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
            if n == func:
                out.append(node.lineno)
    return out


def test_one_path_solver_call_site():
    sites = {str(p.relative_to(REPO)): _calls(p, "PathSolver") for p in MODULES.values()}
    sites = {k: v for k, v in sites.items() if v}
    # render/solver.py makes the solver of the trace stage and the bistatic view; render/bare.py is the
    # bare-Sionna reference of `twin bench trace`; spike_train's is the Sionna reference its bench compares with
    assert {k: len(v) for k, v in sites.items()} == {"render/solver.py": 1, "render/bare.py": 1,
                                                      "datasets/spike_train.py": 1}, sites


def test_solver_settings_are_path_solvers_arguments():
    import sionna.rt as rt

    from twin.config import SolverSettings, TraceConfig

    params = {k: p.default for k, p in inspect.signature(rt.PathSolver.__call__).parameters.items()
              if k not in ("self", "scene")}
    ours = {f: getattr(SolverSettings(), f) for f in SolverSettings.__dataclass_fields__}
    assert ours == params  # every argument, with Sionna's defaults
    kw = TraceConfig(diffraction_lit_region=False, max_depth=2).solver_settings().kwargs()
    assert kw["diffraction_lit_region"] is False and kw["max_depth"] == 2 and kw["synthetic_array"] is True


@pytest.mark.parametrize("value", [299_792_458.0, 1.380649e-23])
def test_physical_constants_in_one_module(value):
    bad = []
    for name, path in MODULES.items():
        if name == "twin.constants":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and node.value == value:
                bad.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not bad, f"{value} defined outside twin/constants.py: {bad}"


def test_architecture_doc_is_linked_and_design_refs_are_gone():
    assert "docs/architecture.md" in (REPO / "README.md").read_text()
    owned_elsewhere = {"folded_lte.py", "spike_train.py", "tb_fingerprint.py", "cir_taps.py", "bistatic_echo.py"}
    bad = [str(p.relative_to(REPO)) for p in MODULES.values()
           if "DESIGN §" in p.read_text() and p.name not in owned_elsewhere]
    assert not bad, f"references to DESIGN § (not in the repository): {bad}"
