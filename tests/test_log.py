"""One way to speak (recipe/log.py): the process's place read in one function, every line said
through one module, a process other than the main one silent but for its own errors, and
--quiet keeping a command to its notes, errors and answer. The behaviour is checked on search.py
with the real all-MiniLM-L6-v2 (offline), a command with all four kinds of line."""

import ast
import json
import os

import pytest

from recipe import cli, log
from recipe.errors import InputError, OneProcessInputError
from tests.conftest import ROOT, load_script

PACKAGE = ROOT / "recipe"
# the names launchers (accelerate launch, torchrun) give this process's place in the environment
PLACE_VARIABLES = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "NODE_RANK"}


@pytest.fixture(autouse=True)
def speaking_as_usual_after():
    """A command run here with --quiet or as another process leaves the next test's commands
    speaking as usual: the level, and the variable that hides the Hub libraries' bars."""
    before = os.environ.get(log.HUB_BARS)
    yield
    log.setup()
    os.environ.pop(log.HUB_BARS, None)
    if before is not None:
        os.environ[log.HUB_BARS] = before


def sources():
    for path in sorted(PACKAGE.rglob("*.py")):
        if path != PACKAGE / "log.py":
            yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(encoding="utf-8"))


def test_the_process_place_is_read_in_one_function(monkeypatch):
    readers = sorted(f"{name}:{node.lineno} {node.value}" for name, tree in sources() for node in ast.walk(tree)
                     if isinstance(node, ast.Constant) and node.value in PLACE_VARIABLES)
    assert readers == []
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert log.place() == log.Place(rank=3, world=4, local_world=2) and not log.is_main()
    for name in ("RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name)
    assert log.place() == log.Place(rank=0, world=1, local_world=1) and log.is_main()


def _speaks_itself(node: ast.AST) -> bool:
    """print(...), accelerator.print(...), sys.stdout/stderr.write(...), logging.basicConfig(...)"""
    if not isinstance(node, ast.Call):
        return False
    f = node.func
    if isinstance(f, ast.Name):
        return f.id == "print"
    if not isinstance(f, ast.Attribute):
        return False
    stream = isinstance(f.value, ast.Attribute) and f.value.attr in ("stdout", "stderr")
    return f.attr in ("print", "basicConfig") or (f.attr == "write" and stream)


def test_every_line_is_said_through_recipe_log():
    own = sorted(f"{name}:{node.lineno}" for name, tree in sources() for node in ast.walk(tree) if _speaks_itself(node))
    assert own == []
    assert _speaks_itself(ast.parse("accelerator.print('x')").body[0].value)  # the rule sees what it should
    assert _speaks_itself(ast.parse("sys.stderr.write('x')").body[0].value)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """all-MiniLM-L6-v2 with a saved query prompt, so that --query-prompt replacing it is a note."""
    from recipe import local_models

    try:
        minilm = local_models.local_folder("all-minilm-l6-v2")
    except Exception as e:  # the test extra installs it; say what is missing rather than fail obscurely
        pytest.skip(str(e))
    folder = tmp_path_factory.mktemp("model") / "final"
    folder.mkdir()
    for entry in os.listdir(minilm):
        if entry != "config_sentence_transformers.json":
            (folder / entry).symlink_to(minilm / entry)
    (folder / "config_sentence_transformers.json").write_text(json.dumps({"prompts": {"query": "query: "}}))
    return folder


@pytest.fixture
def search(model, tmp_path, capsys):
    """search.py with a progress bar, a progress line, a note and an answer; (exit code, out, err)."""
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(
        ["Sourdough proofs for 8 to 12 hours in the fridge.", "The Eiffel Tower is 330 metres tall."])))
    script = load_script("search.py")

    def run(*extra):
        code = script.main(["--model", str(model), "--corpus", str(docs), "--query", "how tall is the tower",
                            "--cache-dir", "null", "--query-prompt", "", *extra])
        return (code, *capsys.readouterr())

    return run


NOTE = "note: queries: --query-prompt '' replaces the model's saved 'query' prompt 'query: '"


def test_quiet_keeps_the_answer_and_the_notes_and_drops_progress(search):
    code, out, err = search()
    assert code == 0 and out.splitlines()[1].split()[2] == "1"
    assert NOTE in err and "2 documents: 2 encoded" in err
    assert "Batches" in err  # sentence-transformers' encoding bar
    assert search("--quiet") == (0, out, NOTE + "\n")


def test_quiet_keeps_the_one_line_error(search, tmp_path):
    code, out, err = search("--quiet", "--top-k", "0")
    assert (code, out) == (2, "") and err.startswith("error: ") and "top_k" in err and len(err.splitlines()) == 1


def test_a_process_other_than_the_main_one_says_nothing(search, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert search() == (0, "", "")
    assert search("--top-k", "0") == (2, "", "")  # every process reads the same settings: the main one says it


def test_an_error_one_process_alone_meets_is_said_by_it_with_its_number(monkeypatch, capsys):
    def own(argv):
        raise OneProcessInputError("checkpoints/step-000002: no RNG state for this process")

    def shared(argv):
        raise InputError("settings.yaml: line 3: unknown setting")

    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert cli.run(own, []) == 2 and cli.run(shared, []) == 2
    assert capsys.readouterr() == ("", "[process 1] error: checkpoints/step-000002: no RNG state for this process\n")
    monkeypatch.setenv("RANK", "0")
    assert cli.run(shared, ["--quiet"]) == 2
    assert capsys.readouterr() == ("", "error: settings.yaml: line 3: unknown setting\n")
