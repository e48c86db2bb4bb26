"""The shape of the tree (issue 16): one import graph without cycles, dependencies pointing one
way (the core below the client, the client below the server), Python only in the folders that
hold it, no package-dir mapping. The graph is read from the source (ast), imports inside
functions included, so that nothing hides behind a late import."""

from __future__ import annotations

import ast
import subprocess
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# import package → the folder holding it
PACKAGES = {"splitverify": REPO / "splitverify",
            "splitverify_client": REPO / "client" / "splitverify_client",
            "splitverify_server": REPO / "server" / "splitverify_server"}
PYTHON_FOLDERS = ("splitverify", "server", "client", "tests", "scripts")
SERVER_STACK = ("fastapi", "uvicorn", "starlette", "splitverify_server")
# Import cycles tolerated while another change removes them: none (keep it that way).
KNOWN_CYCLES = ()


def module_name(package: str, path: Path) -> str:
    parts = [package, *path.relative_to(PACKAGES[package]).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(package, path): path for package, root in PACKAGES.items()
            for path in sorted(root.rglob("*.py"))}


def module_names() -> set[str]:
    """The Python modules and the C extensions (built from ``*.c`` beside them)."""
    return set(modules()) | {module_name(package, path.with_suffix(".py"))
                             for package, root in PACKAGES.items() for path in root.rglob("*.c")}


def imported_names(name: str, path: Path, known: set[str]) -> set[str]:
    """Every absolute module name ``path`` imports, at any depth of the file: ``from a import
    b`` gives ``a.b`` when that is a module of ``known``, else ``a`` (so ``from . import
    sibling`` is an edge to the sibling, not to the package around both)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                found.add(submodule if submodule in known else source)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module → the modules of the three packages it imports (third-party names dropped)."""
    python = modules()
    known = module_names()
    return {name: {target for target in imported_names(name, path, known)
                   if target in python and target != name}
            for name, path in python.items()}


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_reader_sees_relative_and_late_imports():
    graph = import_graph()
    assert "splitverify.circuitgen.generator" in graph["splitverify.circuitgen"]   # from . import
    assert "splitverify.ledger.contract" in graph["splitverify.ledger.sink"]       # from .contract
    assert "splitverify.keyorigin" in graph["splitverify.transcript"]             # inside a function
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_no_import_cycle():
    found = [component for component in cycles(import_graph())
             if component not in KNOWN_CYCLES]
    assert not found, f"import cycles: {found}"


@pytest.mark.parametrize("package, forbidden", [
    ("splitverify", ("splitverify_client", "splitverify_server")),
    ("splitverify_client", SERVER_STACK),
])
def test_dependencies_point_one_way(package, forbidden):
    """The core imports neither side; the client (installed without the server stack) imports
    neither the server nor FastAPI/uvicorn."""
    known = module_names()
    bad = sorted(f"{name} imports {target}" for name, path in modules().items()
                 if name == package or name.startswith(package + ".")
                 for target in imported_names(name, path, known)
                 if target.split(".")[0] in forbidden)
    assert not bad, bad


def test_python_lives_only_in_the_package_folders():
    tracked = subprocess.run(["git", "ls-files", "*.py"], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout.split()
    stray = [path for path in tracked if path != "setup.py"
             and path.split("/")[0] not in PYTHON_FOLDERS]
    assert tracked and not stray, stray


def test_no_package_dir_mapping():
    projects = [REPO / "pyproject.toml", REPO / "client" / "pyproject.toml",
                REPO / "server" / "pyproject.toml"]
    for project in projects:
        setuptools = tomllib.loads(project.read_text()).get("tool", {}).get("setuptools", {})
        assert "package-dir" not in setuptools, project
    assert "package_dir" not in (REPO / "setup.py").read_text()


# --- commands are siblings -----------------------------------------------------------------------

COMMAND_GROUP = "splitverify.commands"
CORE_COMMAND_MODULES = ("splitverify.cli",)
APPS = "splitverify_server.apps"
# the modules of apps/ that implement each server command (besides the registrar the entry point
# names), and the library modules of apps/ that commands share; every module there is one or
# the other, so that a new module must be placed
APPS_COMMANDS = {"demo": ("demo", "training_plot"),
                 "_shared_demo": ("demo",),          # demo --clients K
                 "bench": ("bench", "bench_report", "bench_pipeline", "bench_pool", "peers"),
                 "compare": ("compare", "compare_figure")}
APPS_LIBRARY = ("measure", "units")


def registrars() -> set[str]:
    """The modules whose commands make up `splitverify`: the core CLI's and each entry point's
    in the group (read from the three projects, so no install is needed)."""
    found = set(CORE_COMMAND_MODULES)
    for project in (REPO / "pyproject.toml", REPO / "client" / "pyproject.toml",
                    REPO / "server" / "pyproject.toml"):
        entries = tomllib.loads(project.read_text()).get("project", {}).get("entry-points", {})
        found |= {target.split(":")[0] for target in entries.get(COMMAND_GROUP, {}).values()}
    return found


def command_modules() -> dict[str, str]:
    """Command module → the command (or registrar) it belongs to."""
    owner = {name: name for name in registrars()}
    owner.update({f"{APPS}.{module}": command for command, members in APPS_COMMANDS.items()
                  for module in members})
    return owner


def test_every_module_of_the_commands_folder_is_placed():
    assert "splitverify_server.apps.commands" in registrars()
    assert set(registrars()) <= set(modules()), registrars()
    in_apps = {name for name in modules() if name.startswith(APPS + ".")}
    placed = {name for name in command_modules() if name.startswith(APPS + ".")}
    placed |= {f"{APPS}.{module}" for module in APPS_LIBRARY}
    assert in_apps == placed, (f"place in APPS_COMMANDS or APPS_LIBRARY: "
                               f"{sorted(in_apps - placed)}; gone: {sorted(placed - in_apps)}")


def test_each_registered_command_loads_only_its_own_modules():
    """What a command function of the server's registrar imports from apps/ is its own group,
    so APPS_COMMANDS says what the registration does."""
    path = modules()["splitverify_server.apps.commands"]
    known = module_names()
    tree = ast.parse(path.read_text())
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert set(APPS_COMMANDS) <= set(functions)
    for command, function in functions.items():
        loaded = set()
        for node in ast.walk(function):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                loaded.add(f"{APPS}.{node.module}" if f"{APPS}.{node.module}" in known
                           else APPS)
        own = {f"{APPS}.{module}" for module in APPS_COMMANDS.get(command, ())}
        assert loaded <= own, f"{command} loads {sorted(loaded - own)}"


def test_no_command_module_imports_another():
    """A command module imports library modules and its own command's modules only; what two
    commands share lives in a library module below them (which imports no command module)."""
    owner = command_modules()
    graph = import_graph()
    bad = sorted(f"{name} imports {target}" for name, targets in graph.items()
                 for target in targets if target in owner
                 and owner.get(name, target) != owner[target]
                 and name != "splitverify_server.apps.commands")
    # the server's registrar loads its commands' modules: that is what registering means
    registrar_bad = sorted(f"{name} imports {target}" for name in registrars()
                           for target in graph[name] if target in registrars())
    assert not bad and not registrar_bad, bad + registrar_bad
