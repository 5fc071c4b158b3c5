"""The house keeps its shape: wings that import one way, no circles, no private coupling, small
modules and functions, every module named in docs/ARCHITECTURE.md, every dependency declared,
every docstring reference alive, published schemas current, and no heavy import on grade's path."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest

from tests.helpers import REPO, SAMPLE

HARNESS = REPO / "harness"
#: The floor of each wing: a wing imports only wings on lower floors.
FLOORS = {
    "core": 0,
    "results": 1,
    "io": 2,
    "grading": 3,
    "analysis": 3,
    "report": 3,
    "serve": 3,
    "steps": 4,
    "workflows": 5,
    "cli": 6,
}


def _name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules() -> dict[str, Path]:
    return {_name(p): p for p in sorted(HARNESS.rglob("*.py"))}


@cache
def _trees() -> dict[str, ast.Module]:
    return {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in _modules().items()}


def _imports(name: str) -> list[tuple[str, list[str]]]:
    """Every harness module ``name`` imports (module level, in functions, under TYPE_CHECKING), with the names taken."""
    modules = _modules()
    package = name if modules[name].name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(_trees()[name]):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [a.name for a in node.names]
            if target in modules:
                found.append((target, names))
            found += [(f"{target}.{n}", []) for n in names if f"{target}.{n}" in modules]
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name in modules]
    return [(target, names) for target, names in found if target != name]


def _wing(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in FLOORS) else None


def test_wings_hold_the_modules() -> None:
    top = [p.name for p in HARNESS.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    wings = [p.name for p in HARNESS.iterdir() if (p / "__init__.py").exists()]
    assert len(top) <= 3, top
    assert sorted(wings) == sorted(FLOORS)


def test_no_import_circle() -> None:
    graph = {name: {target for target, _ in _imports(name)} for name in _modules()}
    seen: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            raise AssertionError("import circle: " + " -> ".join([*path[path.index(node):], node]))
        if node in seen:
            return
        for target in graph[node]:
            visit(target, [*path, node])
        seen.add(node)

    for name in graph:
        visit(name, [])


def test_wings_import_only_wings_below_them() -> None:
    wrong = []
    for name in _modules():
        source = _wing(name)
        for target, _ in _imports(name):
            goal = _wing(target)
            if source and goal and source != goal and FLOORS[goal] >= FLOORS[source]:
                wrong.append(f"{name} -> {target}")
    assert not wrong, wrong


def test_no_private_name_crosses_a_module() -> None:
    wrong = []
    for name, tree in _trees().items():
        for target, names in _imports(name):
            wrong += [f"{name} imports {target}.{n}" for n in names if n.startswith("_") and not n.startswith("__")]
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
                wrong.append(f"{name}:{node.lineno} reaches into .{node.attr}")
    assert not wrong, wrong


def test_modules_and_functions_stay_small() -> None:
    long_modules = {
        n: len(p.read_text().splitlines()) for n, p in _modules().items() if len(p.read_text().splitlines()) > 450
    }
    long_functions = [
        f"{n}.{f.name} ({f.end_lineno - f.lineno + 1} lines)"
        for n, tree in _trees().items()
        for f in ast.walk(tree)
        if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and (f.end_lineno or 0) - f.lineno + 1 > 80
    ]
    assert not long_modules and not long_functions, (long_modules, long_functions)


def test_a_wings_subpackage_is_one_level_deep_and_holds_only_its_modules() -> None:
    """A wing may group one job's modules in a subpackage (``workflows/study/``): one level deep, named in
    docs/ARCHITECTURE.md module by module, its ``__init__.py`` only a docstring (nothing a caller could import from
    the package instead of the module that owns it)."""
    packages = [p.parent for p in HARNESS.glob("*/*/__init__.py")]
    assert packages, "no wing holds a subpackage: this test guards nothing"
    deeper = [str(p.relative_to(HARNESS)) for p in HARNESS.glob("*/*/*/__init__.py")]
    assert not deeper, deeper
    for package in packages:
        body = ast.parse((package / "__init__.py").read_text(encoding="utf-8")).body
        assert len(body) == 1 and isinstance(body[0], ast.Expr), f"{package.relative_to(REPO)}/__init__.py holds code"
        assert _wing(_name(package / "__init__.py")) == package.parent.name


def test_architecture_names_every_module() -> None:
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    missing = [str(p.relative_to(HARNESS)) for p in _modules().values()
               if p.name not in ("__init__.py", "__main__.py") and f"`{p.relative_to(HARNESS)}`" not in text]
    assert not missing, f"docs/ARCHITECTURE.md does not name {missing}"


def _names(requirements: list[str]) -> set[str]:
    return {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower().replace("_", "-") for r in requirements}  # type: ignore[union-attr]


def test_every_third_party_import_is_declared() -> None:
    """Default dependencies anywhere; the [local] extra's packages only in the local model's modules
    (serve/local_model.py, decoding.py, structured.py), inside functions (so the default install never needs them)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = _names(project["dependencies"])
    extra = _names(project["optional-dependencies"]["local"])
    distributions = importlib.metadata.packages_distributions()
    imported: dict[str, set[str]] = {}
    top_level: set[tuple[str, str]] = set()
    for name, tree in _trees().items():
        for node in ast.walk(tree):
            found = (
                [a.name.split(".")[0] for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module.split(".")[0]]
                if isinstance(node, ast.ImportFrom) and not node.level and node.module
                else []
            )
            for module in found:
                imported.setdefault(module, set()).add(name)
                if node.col_offset == 0:
                    top_level.add((module, name))
    third_party = {m for m in imported if m not in sys.stdlib_module_names and m != "harness"}

    def dists(module: str) -> set[str]:
        return {d.lower().replace("_", "-") for d in distributions.get(module, [module])}

    undeclared = {m: distributions.get(m) for m in third_party if not dists(m) & (declared | extra)}
    assert not undeclared, f"imported but not in pyproject's dependencies: {undeclared}"
    optional = {m for m in third_party if not dists(m) & declared}
    assert optional == {"torch", "transformers", "llguidance"}, optional
    assert {n for m in optional for n in imported[m]} == {
        f"harness.serve.{n}" for n in ("local_model", "decoding", "structured")
    }
    assert not {(m, n) for (m, n) in top_level if m in optional}, "an optional package imported at module level"


_REFERENCE = re.compile(r":(?:func|class|mod|meth|data):`~?(harness(?:\.\w+)+)`")


def test_docstring_references_resolve() -> None:
    dead = []
    for path in _modules().values():
        for target in _REFERENCE.findall(path.read_text(encoding="utf-8")):
            parts = target.split(".")
            for cut in range(len(parts), 0, -1):
                try:
                    value: object = importlib.import_module(".".join(parts[:cut]))
                except ImportError:
                    continue
                try:
                    for attribute in parts[cut:]:
                        value = getattr(value, attribute)
                except AttributeError:
                    dead.append(f"{path.relative_to(REPO)}: {target}")
                break
            else:
                dead.append(f"{path.relative_to(REPO)}: {target}")
    assert not dead, dead


def test_published_schemas_are_current() -> None:
    from harness.results.base import schema_of
    from harness.results.catalog import RESULT_TYPES

    folder = REPO / "docs" / "schemas"
    for name, kind in RESULT_TYPES.items():
        stored = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
        assert stored == schema_of(kind), f"docs/schemas/{name}.json is stale: run `harness schema -o docs/schemas`"
    published = sorted(p.stem for p in folder.glob("*.json") if not p.name.startswith("."))
    assert published == sorted([*RESULT_TYPES, "study"])
    from harness.workflows.study.file import study_schema

    assert json.loads((folder / "study.json").read_text(encoding="utf-8")) == study_schema(), (
        "docs/schemas/study.json is stale"
    )


HEAVY = ("pandas", "pyarrow", "numpy", "scipy", "matplotlib", "sklearn")


@pytest.mark.parametrize("command", [["grade", "--no-cache"], ["grade", "--dry-run"], ["--help"]])
@pytest.mark.slow
def test_grading_a_jsonl_table_imports_no_heavy_library(server, tmp_path: Path, command: list[str]) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)[:5]), encoding="utf-8")
    args = command if command == ["--help"] else [command[0], str(data), "--base-url", server.base_url, "--out",
                                                   str(tmp_path / "run"), "-q", *command[1:]]
    code = ("import sys, atexit\n"
            f"atexit.register(lambda: print('HEAVY', sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
            f"sys.argv = ['harness', *{args!r}]\n"
            "from harness.cli.app import main\nmain()\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout, out.stdout[-300:]


def test_the_readme_states_what_make_validate_measured() -> None:
    """Every statistical table in the docs is the one ``make validate`` last wrote (validation/*.md)."""
    readme = (REPO / "docs" / "statistics.md").read_text(encoding="utf-8")
    for marker, name in (("validate", "results.md"), ("validate-raters", "raters.md")):
        block = readme.split(f"<!-- {marker} -->\n", 1)[1].split(f"<!-- /{marker} -->", 1)[0]
        assert block.strip() == (REPO / "validation" / name).read_text(encoding="utf-8").strip(), marker


@pytest.mark.slow
def test_the_api_page_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/api.md's code blocks, executed in order in an empty folder (the worked example a newcomer copies)."""
    import contextlib
    import io
    import re

    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "docs" / "api.md").read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) >= 2
    scope: dict[str, object] = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for block in blocks:
            exec(compile(block, "docs/api.md", "exec"), scope)  # our own documentation, run as a newcomer would
    assert "{'ok': 606, 'unparsed': 0" in printed.getvalue() and "escalation" in printed.getvalue()
    assert (tmp_path / "runs" / "api-demo" / "calibration.json").exists()


def test_every_relative_link_in_the_docs_resolves() -> None:
    import re

    broken = []
    for page in [REPO / "README.md", *(REPO / "docs").glob("*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if not target.startswith(("http://", "https://", "mailto:")) and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(REPO)} -> {target}")
    assert not broken, broken


def _test_trees() -> dict[str, ast.Module]:
    return {str(p.relative_to(REPO / "tests")): ast.parse(p.read_text(encoding="utf-8"))
            for p in sorted((REPO / "tests").rglob("*.py"))}


#: The test files that hold no one module to account, so sit at the top of tests/: the house rules, every
#: docstring's examples, and the package's own face (harness/__init__.py's exports).
WHOLE_PACKAGE_TESTS = {"test_house.py", "test_doctests.py", "test_package.py"}
#: Modules over 100 lines that have no test file of their own yet (their behaviour is tested through others').
#: Each leaves this list when tests/<wing>/test_<module>.py is written; the test below fails until it does.
WITHOUT_TEST_FILE = {
    "report/transitions.py",
    "report/comparison.py",
    "cli/study_commands.py",
    "analysis/table_calibration.py",
    "analysis/comparison.py",
    "analysis/pilots.py",
    "cli/data_commands.py",
    "core/cells.py",
    "grading/answers.py",
    "grading/cache_disk.py",
    "grading/identity.py",
    "report/charts.py",
    "report/sections.py",
    "results/analysis.py",
    "results/calibration.py",
    "results/comparison.py",
    "results/manifest.py",
    "results/raters.py",
    "results/thresholds.py",
    "serve/batches.py",
    "serve/decoding.py",
    "serve/runner.py",
    "serve/wire.py",
    "steps/outcome.py",
    "workflows/study/steps.py",
}


def _test_file_of(module: str) -> Path:
    """Where the tests of ``module`` (``wing/name.py``, ``wing/subpackage/name.py``) live: ``tests/wing/test_name.py``
    (``tests/wing/subpackage/test_name.py``)."""
    *folders, name = module.split("/")
    return REPO.joinpath("tests", *folders, f"test_{name}")


def test_tests_mirror_the_package() -> None:
    """A newcomer finds a module's tests at tests/<wing>/test_<module>.py (end-to-end tests may be named by the
    behaviour they hold, in the wing's folder); no test file is filed beside them by anything else."""
    tests = REPO / "tests"
    flat = sorted(p.name for p in tests.glob("test_*.py") if p.name not in WHOLE_PACKAGE_TESTS)
    assert not flat, f"test files outside the mirror (move each test to tests/<wing>/test_<module>.py): {flat}"
    folders = sorted(p.name for p in tests.iterdir() if p.is_dir() and p.name != "__pycache__")
    assert set(folders) <= set(FLOORS), f"test folders that are not wings: {sorted(set(folders) - set(FLOORS))}"
    modules = [str(p.relative_to(HARNESS)) for p in _modules().values() if p.parent != HARNESS
               and p.name != "__init__.py" and len(p.read_text(encoding="utf-8").splitlines()) > 100]
    missing = sorted(m for m in modules if m not in WITHOUT_TEST_FILE and not _test_file_of(m).exists())
    assert not missing, f"modules over 100 lines without tests/<wing>/test_<module>.py: {missing}"
    done = sorted(m for m in WITHOUT_TEST_FILE if _test_file_of(m).exists() or not (HARNESS / m).exists())
    assert not done, (
        f"take these off WITHOUT_TEST_FILE in tests/test_house.py (they have a test file, or are gone): {done}"
    )


def test_tests_use_public_names_and_no_wall_clock() -> None:
    """Tests use what a user can (no ``_private`` import from harness or validation, no ``obj._private(...)`` call), and
    wait for events, never assert seconds: a loaded machine must not fail the suite."""
    private, clocks = [], []
    for name, tree in _test_trees().items():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.split(".")[0] in ("harness", "validation")
            ):
                private += [f"{name}:{node.lineno} {node.module}.{a.name}" for a in node.names
                            if a.name.startswith("_") and not a.name.startswith("__")]
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr.startswith("_")
                    and not node.func.attr.startswith("__") and node.func.attr != "_repr_html_"):
                private.append(f"{name}:{node.lineno} .{node.func.attr}()")
            if isinstance(node, ast.Assert):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Attribute) and inner.attr in ("monotonic", "perf_counter", "time"):
                        clocks.append(f"{name}:{node.lineno}")
    assert not private, private
    assert not clocks, clocks
