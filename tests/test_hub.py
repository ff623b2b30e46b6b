"""recipe/hub.py: the one Hub id test, the write check a push makes before any work, and the push
whose Hub failures are one line, for a model (train.py --push-to-hub) and a dataset
(data/publish.py) alike. The Hub is a fake HfApi; nothing here reaches the network."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from recipe import hub

ROOT = Path(__file__).resolve().parents[1]
SYNTH = ROOT / "tests" / "data" / "synth_output"


class FakeHfApi:
    """The Hub as one token sees it: `me` may write under `me` and `my-org`; `fail` names the call
    that raises (the way HTTP and network errors reach huggingface_hub's callers)."""

    role = "write"
    fail = None
    calls: list = []

    def __init__(self, token=None):
        self.token = token

    def _call(self, name, *args):
        FakeHfApi.calls.append((name, *args))
        if FakeHfApi.fail == name:
            raise RuntimeError(f"500 Server Error for {name}\n\nRequest ID: Root=1-abc\ntraceback-like detail")

    def whoami(self):
        self._call("whoami")
        return {"name": "me", "orgs": [{"name": "my-org"}], "auth": {"accessToken": {"role": FakeHfApi.role}}}

    def create_repo(self, repo_id, **kw):
        self._call("create_repo", repo_id, kw.get("repo_type"))

    def repo_info(self, repo_id, **kw):
        return type("Info", (), {"private": True})()

    def upload_folder(self, *, repo_id, folder_path, **kw):
        self._call("upload_folder", repo_id, kw.get("repo_type"))
        return type("Info", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/1"})()


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    import huggingface_hub

    FakeHfApi.calls, FakeHfApi.fail, FakeHfApi.role = [], None, "write"
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHfApi)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", "hf_faketoken")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "README.md").write_text("card\n")
    return folder


TARGETS = [pytest.param(hub.MODEL, id="model"), pytest.param(hub.DATASET, id="dataset")]


@pytest.mark.parametrize("target", TARGETS)
def test_push_pushes_in_one_commit_after_the_write_check(fake_hub, target):
    url = hub.push(fake_hub, "my-org/thing", target)
    assert url == "https://huggingface.co/my-org/thing/commit/1"
    assert [c[0] for c in FakeHfApi.calls] == ["whoami", "create_repo", "upload_folder"]
    assert all(c[2] == target.repo_type for c in FakeHfApi.calls[1:])


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("setup, message", [
    pytest.param("no-token", "no Hugging Face token: set HF_TOKEN or run `hf auth login`", id="no-token"),
    pytest.param("read-only", "the Hugging Face token is read-only", id="read-only"),
    pytest.param("other-namespace", "this token (me) cannot write under 'someone-else'; it may write under me, my-org",
                 id="other-namespace"),
    pytest.param("hub-refuses-token", "cannot check the token with the Hub (500 Server Error for whoami)",
                 id="hub-refuses-token"),
])
def test_push_without_write_access_refuses_before_any_work(fake_hub, monkeypatch, tmp_path, target, setup, message):
    repo = "someone-else/thing" if setup == "other-namespace" else "me/thing"
    if setup == "no-token":
        import huggingface_hub

        monkeypatch.setenv("HF_TOKEN", "")
        monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    FakeHfApi.role = "read" if setup == "read-only" else "write"
    FakeHfApi.fail = "whoami" if setup == "hub-refuses-token" else None
    for check in (lambda: hub.check_write(repo, target), lambda: hub.push(fake_hub, repo, target)):
        with pytest.raises(hub.PublishError) as e:
            check()
        assert message in str(e.value) and "\n" not in str(e.value)
    assert [c[0] for c in FakeHfApi.calls if c[0] != "whoami"] == []  # no repo made, nothing uploaded


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("where, message", [
    pytest.param("create_repo", "cannot create {kind} repo me/thing: 500 Server Error for create_repo; nothing was pushed", id="create"),
    pytest.param("upload_folder", "upload to me/thing failed: 500 Server Error for upload_folder; no commit was made",
                 id="upload"),
])
def test_push_reports_a_hub_failure_in_one_line(fake_hub, target, where, message):
    FakeHfApi.fail = where
    with pytest.raises(hub.PublishError) as e:
        hub.push(fake_hub, "me/thing", target)
    text = str(e.value)
    assert text.startswith(message.format(kind=target.repo_type)) and "\n" not in text, text
    # a trained model's final/ stays on disk: the line says how to push it again
    assert (f"`hf upload me/thing {fake_hub}`" in text) == (target.folder_kept and where == "upload_folder")


def _run(script: str, *args, env: dict) -> subprocess.CompletedProcess:
    """A command's main() with the fake Hub in place, as its own process (the exit code and stderr
    the user sees)."""
    code = ("import sys, huggingface_hub, huggingface_hub.constants; from tests.test_hub import FakeHfApi; "
            "huggingface_hub.HfApi = FakeHfApi; huggingface_hub.constants.HF_HUB_OFFLINE = False; "
            f"FakeHfApi.fail = {env.pop('FAIL', None)!r}; FakeHfApi.role = {env.pop('ROLE', 'write')!r}; "
            f"{script}; sys.exit(main(sys.argv[1:]))")
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "HF_TOKEN": "hf_faketoken", **env},
                          timeout=300)


def test_publish_refuses_a_read_only_token_before_reading_the_input(tmp_path):
    # a folder publish cannot read: were it read first, the error would be about the folder
    r = _run("from recipe.commands.publish import main", "--input", tmp_path / "nowhere", "--repo-id", "me/x",
             env={"ROLE": "read"})
    assert r.returncode == 2 and r.stderr == ("error: data/publish.py: the Hugging Face token is read-only; "
                                              "use a token with write access\n"), r.stderr


def test_publish_reports_an_upload_error_in_one_line(tmp_path):
    r = _run("from recipe.commands.publish import main", "--input", SYNTH, "--repo-id", "me/x",
             env={"FAIL": "upload_folder"})
    assert r.returncode == 2 and r.stdout == "", (r.stdout, r.stderr)
    assert r.stderr.startswith("error: upload to me/x failed: 500 Server Error for upload_folder; no commit was made")
    assert r.stderr.count("\n") == 1, r.stderr


def test_train_refuses_a_namespace_it_cannot_write_before_training(tmp_path):
    out = tmp_path / "run"
    r = _run("from recipe.commands.train import main", "--config", ROOT / "recipe/configs/smoke.yaml",
             "--output-dir", out, "--push-to-hub", "--hub-model-id", "someone-else/m", env={})
    assert r.returncode == 2 and r.stderr.startswith("error: --hub-model-id someone-else/m: this token (me) cannot "
                                                     "write under 'someone-else'"), r.stderr
    assert r.stderr.count("\n") == 1 and not out.exists()


@pytest.mark.parametrize("name, ok", [
    ("intfloat/e5-mistral-7b-instruct", True), ("me/x", True), ("a_b/c.d-e", True),
    ("gpt2", False),  # the Hub's legacy form without a namespace: every caller wants NAMESPACE/NAME
    ("a/b/c", False), ("./m/x", False), ("~/m", False), ("/abs/path", False), ("no id/x", False),
    ("-me/x", False), ("me/.x", False), ("me/x-", False), ("me/x.git", False), ("me--a/x", False),
    ("me/a..b", False), ("me/" + "x" * 97, False),
    ("org/data.jsonl", False), ("org/recipe.YAML", False),  # a data file's name is a path
])
def test_is_hub_id_one_rule(name, ok):
    assert hub.is_hub_id(name) is ok
    assert (hub.hub_id_problem(name) is None) is ok


def test_a_name_on_disk_or_under_a_local_folder_is_not_a_hub_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out" / "run").mkdir(parents=True)
    assert not hub.is_hub_id("out/run")  # exists
    assert not hub.is_hub_id("out/rnu")  # a typo under a local folder: a missing path
    assert "out/ is a local folder" in hub.hub_id_problem("out/rnu")
    assert hub.is_hub_id("elsewhere/run")
    with pytest.raises(hub.PublishError, match=r"^--repo-id 'out/rnu': out/ is a local folder"):
        hub.check_hub_id("out/rnu", "--repo-id")


def test_export_names_a_hub_base_model_and_hub_data_by_the_one_rule(tmp_path, monkeypatch):
    from recipe.train.config import TrainConfig
    from recipe.train.export import _hub_id, model_card

    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    cards = {m: model_card(TrainConfig(model=m, output_dir="out/run"), {}, "Q: ")
             for m in ("intfloat/e5-mistral-7b-instruct", "out/base", "tiny-mistral")}
    assert "base_model: intfloat/e5-mistral-7b-instruct\n" in cards["intfloat/e5-mistral-7b-instruct"]
    assert "base_model:" not in cards["out/base"] + cards["tiny-mistral"]
    assert _hub_id("me/e5-data") == "me/e5-data" and _hub_id("nq") == "sentence-transformers/natural-questions"
    assert _hub_id("out/synth.jsonl") is None and _hub_id("me/data.jsonl") is None
