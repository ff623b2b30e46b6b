"""Imports only go down: commands (recipe/commands/) -> stages (synth, data, train, eval) ->
shared modules (recipe/*.py). No stage imports a command, a stage imports only the stages before
it in the pipeline's order, so no two stages import each other, and a shared module imports no
stage; what two stages share lives in a shared module below both. Read from the source with
`ast`, every import counted, those inside functions too."""

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "recipe"
STAGES = ("synth", "data", "train", "eval")  # the pipeline's order: a stage may import those before it


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports(path: Path) -> set[str]:
    """The modules of the project that `path` imports (`from recipe import cli`: recipe.cli)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if is_module(f"{base}.{alias.name}") else base)
    return {m for m in found if m.split(".")[0] in ("recipe", "tests", "benchmarks")}


def layer(name: str) -> str:
    """'command', a stage's name, or 'shared'; the package itself (recipe/__init__.py) is shared."""
    parts = name.split(".")
    if len(parts) > 1 and parts[1] == "commands":
        return "command"
    if len(parts) > 1 and parts[1] in STAGES:
        return parts[1]
    return "shared"


def allowed(importer: str, imported: str) -> bool:
    mine, theirs = layer(importer), layer(imported)
    if theirs == "shared":
        return True
    if theirs == "command":  # a command imports no other command either
        return False
    if mine == "command":
        return True
    return mine != "shared" and STAGES.index(theirs) <= STAGES.index(mine)


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_imports_only_go_down():
    edges = graph()
    assert len(edges) > 80 and any("recipe.files" in deps for deps in edges.values())  # the graph was read
    wrong = sorted(f"{a} imports {b} ({layer(a)} -> {layer(b)})" for a, deps in edges.items() for b in deps
                   if b.startswith("recipe") and not allowed(a, b))
    assert wrong == []


def test_the_package_imports_neither_tests_nor_benchmarks():
    edges = graph()
    assert sorted(f"{a} imports {b}" for a, deps in edges.items() for b in deps if not b.startswith("recipe")) == []


def test_the_rule_refuses_what_it_should():
    assert not allowed("recipe.train.export", "recipe.commands.decontaminate")  # a stage importing a command
    assert not allowed("recipe.data.decontamination", "recipe.eval.run")  # a stage importing a later one
    assert not allowed("recipe.files", "recipe.train.export")  # a shared module importing a stage
    assert not allowed("recipe.commands.train", "recipe.commands.eval")  # a command importing another
    assert allowed("recipe.commands.decontaminate", "recipe.eval.tasks")
    assert allowed("recipe.train.data", "recipe.data.records") and allowed("recipe.eval.run", "recipe.files")
    assert imports(PACKAGE / "commands" / "build_mix.py") >= {"recipe.cli", "recipe.files", "recipe.data.mix"}
