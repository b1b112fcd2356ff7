"""The public API (docs/api.md): every module declares ``__all__``, every name in it
exists, every public function and method named there is fully annotated, and the
package faces export their main functions and results. theory never imports simulation
or experiments; simulation never imports experiments (one room per concept)."""
import ast
import importlib
import inspect
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("theory", "simulation", "experiments")
MODULES = sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts)
    for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")
    if p.name not in ("__main__.py",)
)


def _name(module: str) -> str:
    return module[: -len(".__init__")] if module.endswith(".__init__") else module


@pytest.mark.parametrize("module", MODULES)
def test_module_declares_all(module):
    mod = importlib.import_module(_name(module))
    assert hasattr(mod, "__all__"), f"{module} has no __all__"
    missing = [n for n in mod.__all__ if not hasattr(mod, n)]
    assert not missing, f"{module}.__all__ names missing objects: {missing}"


def _unannotated(fn) -> list[str]:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    bad = [p.name for p in sig.parameters.values()
           if p.name not in ("self", "cls") and p.annotation is inspect.Parameter.empty
           and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if sig.return_annotation is inspect.Signature.empty and fn.__name__ != "__init__":
        bad.append("return")
    return bad


@pytest.mark.parametrize("module", MODULES)
def test_public_functions_are_annotated(module):
    mod = importlib.import_module(_name(module))
    problems = {}
    for name in getattr(mod, "__all__", ()):
        obj = getattr(mod, name, None)
        if inspect.isfunction(obj) and obj.__module__ == mod.__name__:
            if bad := _unannotated(obj):
                problems[name] = bad
    assert not problems, f"{module}: public functions without type hints: {problems}"


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


@pytest.mark.parametrize("package, forbidden", [("theory", {"simulation", "experiments"}),
                                                 ("simulation", {"experiments"})])
def test_import_direction(package, forbidden):
    offenders = {str(p.relative_to(ROOT)): sorted(_imports(p) & forbidden)
                 for p in (ROOT / package).rglob("*.py") if _imports(p) & forbidden}
    assert not offenders, f"{package} must not import {sorted(forbidden)}: {offenders}"


def test_package_faces_export_main_functions():
    import experiments
    import simulation
    import theory

    for name in ("solve_dmft", "DMFTResult", "threshold_curve", "solve_threshold", "critical_alpha",
                 "spectrum_summary", "Measure", "get_loss"):
        assert name in theory.__all__, name
    for name in ("make_problem", "run_dynamics", "FlowResult", "run_sweep", "lowest_eigenpairs"):
        assert name in simulation.__all__, name
    assert isinstance(experiments.__all__, list)
