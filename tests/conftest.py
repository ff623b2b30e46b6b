import importlib.util
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never download


def load_script(relpath: str):
    """Import a top-level script (data/synthesize.py, train.py, ...) as a module."""
    path = ROOT / relpath
    spec = importlib.util.spec_from_file_location(path.stem + "_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def teacher(monkeypatch):
    from tests.fake_teacher import FakeTeacher

    t = FakeTeacher().start_in_thread()
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.setenv("OPENAI_BASE_URL", t.base_url)
    yield t
    t.stop()


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tests on tiny models: a second intra-op thread saves nothing there, and on a busy machine
    its spinning fights the other processes for the cores (minutes instead of seconds)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
