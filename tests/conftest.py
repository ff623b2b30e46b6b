import importlib.util
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never download


def pytest_configure(config):
    from tests import progress

    progress.install(config)


def load_script(relpath: str):
    """Import a top-level script (data/synthesize.py, train.py, ...) as a module."""
    path = ROOT / relpath
    spec = importlib.util.spec_from_file_location(path.stem + "_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def teacher(monkeypatch):
    from recipe.synth.fake_teacher import FakeTeacher

    t = FakeTeacher().start_in_thread()
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.setenv("OPENAI_BASE_URL", t.base_url)
    yield t
    t.stop()


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread, here and in the processes the tests start, for tests on tiny models:
    a second thread saves them nothing and on a busy 2-core machine spins against the other
    processes (the throughput test: 143 s with two threads, 11 s with one; docs/benchmarks.md).
    Not for MiniLM-sized work, which a second core speeds up when the machine is quiet."""
    import torch

    before, env = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    yield
    torch.set_num_threads(before)
    if env is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = env


# where the commands write by default (eval.py out/eval, train.py outputs/run, the recipes' outputs/...),
# relative to the folder they run in
OUTPUT_FOLDERS = ("out", "outputs")
RUN_ROOT: Path | None = None  # the tests' own copy of the checkout's top level (own_output_root)


@pytest.fixture(scope="session", autouse=True)
def own_output_root(tmp_path_factory):
    """The tests run in a folder of their own that shows the checkout's top level (links to each
    entry) but has its own out/ and outputs/: a command a test runs without --output-dir writes
    there, where the guard below sees it, and a user's run in the checkout's out/ at the same time
    is neither disturbed nor taken for a test's doing."""
    global RUN_ROOT
    root = tmp_path_factory.mktemp("checkout")
    for entry in ROOT.iterdir():
        if entry.name not in OUTPUT_FOLDERS:
            (root / entry.name).symlink_to(entry)
    before, RUN_ROOT = os.getcwd(), root
    os.chdir(root)
    yield root
    os.chdir(before)


def output_snapshot(root: Path) -> dict[str, tuple]:
    """What a test could have added to `root`'s output folders: each folder's entries, and its
    subfolders' (a lock file in out/eval/ changes only out/eval)."""
    seen = {}
    for base in (root / name for name in OUTPUT_FOLDERS):
        for folder in [base, *(p for p in base.glob("*") if p.is_dir())] if base.is_dir() else []:
            seen[str(folder)] = tuple(sorted(p.name for p in folder.iterdir()))
    return seen


def added(before: dict[str, tuple], after: dict[str, tuple]) -> list[str]:
    return sorted(f"{folder}/{name}" for folder, names in after.items()
                  for name in set(names) - set(before.get(folder, ()))) or sorted(set(after) - set(before))


@pytest.fixture(autouse=True)
def checkout_stays_clean(own_output_root):
    """A test writes into its own temporary folders: a command it runs without --output-dir
    (which leaves out/eval/.lock at least) is caught here, in the tests' own output root."""
    before = output_snapshot(own_output_root)
    yield
    after = output_snapshot(own_output_root)
    if after != before:
        pytest.fail(f"the test wrote into the output folders of its own root: {', '.join(added(before, after))}")


@pytest.fixture(autouse=True)
def fresh_accelerate():
    """accelerate keeps one state per process, its mixed precision included: every test starts
    without that state and leaves none behind, so no test's Accelerator depends on which test ran
    before it in the same worker."""
    from accelerate.state import AcceleratorState, GradientState

    def reset():
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()

    reset()
    yield
    reset()
