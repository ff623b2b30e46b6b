"""`data/publish.py`: what a push sends (checked through --dry-run), the card, no credential in
anything written, and one-line errors for bad input."""

import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from recipe.data import hub

ROOT = Path(__file__).parents[1]
SYNTH = Path(__file__).parent / "data" / "synth_output"
# fake credentials in the real formats, assembled at run time so no scanner mistakes them for leaks
PLANTED = {"OPENAI_API_KEY": "sk-" + "proj-PLANTEDopenaiKEY0123456789",
           "HF_TOKEN": "hf" + "_PLANTEDhubTOKEN0123456789abcd",
           "AZURE_OPENAI_API_KEY": "PLANTEDazureKEY0123456789"}


def _examples(folder=SYNTH):
    return [json.loads(line) for line in (folder / "examples.jsonl").read_text().strip("\n").split("\n")]


def _publish(*args, env=None):
    import os

    return subprocess.run([sys.executable, str(ROOT / "data" / "publish.py"), *map(str, args)],
                          capture_output=True, text=True, env={**os.environ, **(env or {})})


def _front_matter(readme: Path) -> dict:
    text = readme.read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    dest = tmp_path_factory.mktemp("pub") / "out"
    r = _publish("--input", SYNTH, "--repo-id", "me/e5-synth", "--dry-run", "--output-dir", dest)
    assert r.returncode == 0, r.stderr
    return dest


def test_dry_run_writes_one_config_per_group_plus_all(published):
    import datasets

    want = Counter(r["task_group"] for r in _examples())
    files = sorted(str(p.relative_to(published)) for p in published.rglob("*") if p.is_file())
    shards = [f"{g}/train-00000-of-00001.parquet" for g in want]
    images = [f"images/{name}" for name in ("lengths.png", "records_by_group_language.png", "rejections.png")]
    assert files == sorted(["README.md", ".e5-output.json"] + shards + images)
    marker = json.loads((published / ".e5-output.json").read_text())
    assert marker["written_by"] == "publish --dry-run" and sorted(marker["files"]) == sorted(["README.md"] + shards + images)
    meta = _front_matter(published / "README.md")
    assert [c["config_name"] for c in meta["configs"]] == ["all"] + list(want)
    assert len(datasets.load_dataset(str(published), "all", split="train")) == 30
    for group, n in want.items():
        ds = datasets.load_dataset(str(published), group, split="train")
        assert len(ds) == n and set(ds["task_group"]) == {group}
        ids = {r["id"] for r in _examples() if r["task_group"] == group}
        assert set(ds["id"]) == ids


def test_card_reports_settings_counts_tokens_cost_terms_citation(published):
    text = (published / "README.md").read_text()
    meta = _front_matter(published / "README.md")
    examples = _examples()
    assert meta["language"] == ["de", "en", "ja", "pl"]
    assert meta["size_categories"] == ["n<1K"]
    # counts per group and language, from the data
    per = Counter((r["task_group"], r["language"]) for r in examples)
    row = next(line for line in text.splitlines() if line.startswith("| Polish |"))
    groups = ["short-long", "long-short", "short-short", "long-long", "sts", "bitext"]
    assert row == "| Polish | " + " | ".join(str(per[(g, "Polish")]) for g in groups) + f" | {sum(per[(g, 'Polish')] for g in groups)} |"
    # tokens and cost over kept, brainstorm and rejected calls
    side = [json.loads(l) for f in ("tasks.jsonl", "rejected.jsonl") for l in (SYNTH / f).read_text().strip("\n").split("\n")]
    tokens = sum(r["usage"]["prompt_tokens"] + r["usage"]["completion_tokens"] for r in examples + side)
    cost = sum(r["cost_usd"] or 0 for r in examples + side)
    assert f"Total: {tokens:,} tokens, {cost:,.4f} USD (1 call had no known price, not counted)" in text
    # generation settings, terms, citation, how to train
    assert "`gpt-4o-2024-08-06`" in text and "`gpt-35-turbo`" in text
    assert "Seed: 1234" in text and '"temperature": 1.0' in text and "Table 8" in text
    assert "max_tokens: 2048" in text  # a token *count* is not a credential
    assert "openai.com/policies/terms-of-use" in text
    assert "@inproceedings{wang2024improving" in text
    assert "python data/mine_negatives.py --input me/e5-synth" in text


def test_no_credential_in_any_written_file_or_log(tmp_path):
    src = tmp_path / "run"
    shutil.copytree(SYNTH, src)
    run = json.loads((src / "runs.jsonl").read_text())
    run["config"].update({"api_key": PLANTED["OPENAI_API_KEY"], "hf_token": PLANTED["HF_TOKEN"],
                          "headers": {"Authorization": f"Bearer {PLANTED['HF_TOKEN']}"},
                          "note": f"key was {PLANTED['OPENAI_API_KEY']}",
                          "base_url": f"https://x.openai.azure.com/v1?api-key={PLANTED['AZURE_OPENAI_API_KEY']}"})
    run["argv"] += ["--api-key", PLANTED["OPENAI_API_KEY"], "--hf-token", "plainvalue0123456789",
                    "--azure-key=plainvalue9876543210"]
    (src / "runs.jsonl").write_text(json.dumps(run) + "\n")
    r = _publish("--input", src, "--repo-id", "me/x", "--dry-run", "--output-dir", tmp_path / "pub", env=PLANTED)
    assert r.returncode == 0, r.stderr
    import pyarrow.parquet as pq

    written = [r.stdout, r.stderr]
    for p in (tmp_path / "pub").rglob("*"):
        if p.suffix == ".parquet":
            written.append(json.dumps(pq.read_table(p).to_pylist()))
            written.append(p.read_bytes().decode("latin-1"))
        elif p.suffix == ".png":  # the card's pictures: no text chunk may carry one either
            written.append(p.read_bytes().decode("latin-1"))
        elif p.is_file():
            written.append(p.read_text())
    for secret in [*PLANTED.values(), "plainvalue0123456789", "plainvalue9876543210"]:
        assert not any(secret in text for text in written), secret
    assert "<redacted>" in (tmp_path / "pub" / "README.md").read_text()


def test_refuses_when_an_example_carries_a_credential(tmp_path):
    src = tmp_path / "run"
    shutil.copytree(SYNTH, src)
    lines = (src / "examples.jsonl").read_text().strip("\n").split("\n")
    rec = json.loads(lines[3])
    rec["positive"] += " " + PLANTED["AZURE_OPENAI_API_KEY"]
    lines[3] = json.dumps(rec)
    (src / "examples.jsonl").write_text("\n".join(lines) + "\n")
    r = _publish("--input", src, "--repo-id", "me/x", "--dry-run", "--output-dir", tmp_path / "pub", env=PLANTED)
    assert r.returncode == 2 and "refusing to publish" in r.stderr and PLANTED["AZURE_OPENAI_API_KEY"] not in r.stderr
    assert not (tmp_path / "pub").exists() and list(tmp_path.iterdir()) == [src]  # no half-written folder


def _bad_inputs(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    blank = tmp_path / "blank"
    blank.mkdir()
    (blank / "examples.jsonl").write_text("")
    broken = tmp_path / "broken"
    shutil.copytree(SYNTH, broken)
    with (broken / "examples.jsonl").open("a") as f:
        f.write('{"id": "x", "task_group": "sts"\n')
    nofield = tmp_path / "nofield"
    shutil.copytree(SYNTH, nofield)
    lines = (nofield / "examples.jsonl").read_text().strip("\n").split("\n")
    lines[1] = json.dumps({k: v for k, v in json.loads(lines[1]).items() if k != "positive"})
    (nofield / "examples.jsonl").write_text("\n".join(lines) + "\n")
    badtype = tmp_path / "badtype"
    shutil.copytree(SYNTH, badtype)
    lines = (badtype / "examples.jsonl").read_text().strip("\n").split("\n")
    lines[2] = json.dumps({**json.loads(lines[2]), "job": "seven"})
    (badtype / "examples.jsonl").write_text("\n".join(lines) + "\n")
    return [(empty, "me/x", "no examples.jsonl"), (badtype, "me/x", "short-long examples do not fit one table"), (blank, "me/x", "no examples, nothing to publish"),
            (broken, "me/x", "examples.jsonl:31: not valid JSON"),
            (nofield, "me/x", "examples.jsonl:2: missing field 'positive'"),
            (SYNTH, "just-a-name", "need NAMESPACE/NAME"), (tmp_path / "nowhere", "me/x", "not a folder")]


def test_bad_input_gives_one_line_errors_and_writes_nothing(tmp_path):
    for src, repo, message in _bad_inputs(tmp_path):
        dest = tmp_path / f"pub-{src.name}"
        r = _publish("--input", src, "--repo-id", repo, "--dry-run", "--output-dir", dest)
        assert r.returncode == 2 and message in r.stderr, (src, r.stderr)
        assert r.stderr.count("\n") == 1 and r.stdout == ""
        assert not dest.exists()


def test_push_without_token_stops_before_anything(tmp_path):
    env = {"HF_TOKEN": "", "HF_HOME": str(tmp_path / "hf"), "HF_TOKEN_PATH": str(tmp_path / "hf" / "token"),
           "HF_HUB_OFFLINE": "1"}
    r = _publish("--input", SYNTH, "--repo-id", "me/x", env=env)
    assert r.returncode == 2 and r.stderr.startswith("error: no Hugging Face token") and r.stderr.count("\n") == 1
    # the hint, taken as written, is today's form: it runs without a note about an old spelling
    hint = re.search(r"\(or write locally with ([^)]*)\)", r.stderr).group(1).split()
    dest = tmp_path / "local"
    done = _publish("--input", SYNTH, "--repo-id", "me/x", *[str(dest) if a == "DIR" else a for a in hint], env=env)
    assert done.returncode == 0 and (dest / "README.md").is_file(), done.stderr
    assert "note:" not in done.stderr and "accepted until" not in done.stderr, done.stderr


class FakeApi:
    """Stands in for the Hub: records what one push would upload, or fails where asked."""
    calls = []
    fail = None
    public_repos = set()

    def __init__(self, token=None):
        self.token = token

    def whoami(self):  # the write check every push makes first
        return {"name": "me", "orgs": [], "auth": {"accessToken": {"role": "write"}}}

    def create_repo(self, repo_id, **kw):
        FakeApi.calls.append(("create_repo", repo_id, kw))
        if FakeApi.fail == "create":
            raise RuntimeError("401 Unauthorized")

    def repo_info(self, repo_id, **kw):
        return type("Info", (), {"private": repo_id not in FakeApi.public_repos})()

    def upload_folder(self, *, repo_id, folder_path, **kw):
        files = {str(p.relative_to(folder_path)): p.read_bytes() for p in Path(folder_path).rglob("*") if p.is_file()}
        FakeApi.calls.append(("upload_folder", repo_id, kw, files))
        if FakeApi.fail == "upload":
            raise RuntimeError("Connection reset by peer")
        return type("Info", (), {"commit_url": "https://hf.co/commit/1"})()


def test_push_sends_exactly_the_dry_run_in_one_commit(tmp_path, monkeypatch, published):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # the fake is the Hub
    FakeApi.calls, FakeApi.fail = [], None
    out = hub.load_output_dir(SYNTH)
    hub.build(out, "me/e5-synth", tmp_path / "ds")
    assert hub.push(tmp_path / "ds", "me/e5-synth", "tok", private=True) == "https://hf.co/commit/1"
    (create, _, create_kw), (upload, _, upload_kw, files) = FakeApi.calls
    assert (create, upload) == ("create_repo", "upload_folder")  # one repo call, one commit
    assert create_kw["private"] is True and create_kw["repo_type"] == "dataset"
    assert upload_kw["repo_type"] == "dataset"
    dry = {str(p.relative_to(published)): p.read_bytes() for p in published.rglob("*")
           if p.is_file() and p.name != ".e5-output.json"}
    assert files == dry  # byte for byte what --dry-run wrote (less its own marker)

    for where, message in [("create", "nothing was pushed"), ("upload", "no commit was made")]:
        FakeApi.fail = where
        with pytest.raises(hub.PublishError, match=message):
            hub.push(tmp_path / "ds", "me/e5-synth", "tok")

    FakeApi.calls, FakeApi.fail, FakeApi.public_repos = [], None, {"me/already-public"}
    with pytest.raises(hub.PublishError, match="already exists and is public.*nothing was pushed"):
        hub.push(tmp_path / "ds", "me/already-public", "tok", private=True)
    assert [c[0] for c in FakeApi.calls] == ["create_repo"]  # no upload


def test_card_shows_its_pictures_and_no_overlap_measured(published):
    import re

    from PIL import Image

    text = (published / "README.md").read_text()
    linked = re.findall(r"!\[[^\]]+\]\((images/[a-z_]+\.png)\)", text)
    assert linked == ["images/records_by_group_language.png", "images/lengths.png", "images/rejections.png"]
    for path in linked:
        with Image.open(published / path) as im:  # a real picture, not a placeholder
            assert im.format == "PNG" and im.width >= 600 and im.height >= 150
    assert "## Overlap with evaluation data\n\nNot measured: no `decontamination.json` in the synthesis folder" in text


def test_card_carries_the_contamination_table_when_the_folder_has_a_report(tmp_path):
    from recipe.commands.decontaminate import main as decontaminate

    src = tmp_path / "run"
    shutil.copytree(SYNTH, src)
    lines = (src / "examples.jsonl").read_text().strip("\n").split("\n")
    leaked = json.loads(lines[3])
    sts = json.loads((ROOT / "tests/data/eval/STSBenchmark/test.jsonl").read_text().split("\n")[0])["sentence1"]
    lines[3] = json.dumps({**leaked, "positive": sts.upper()})
    (src / "examples.jsonl").write_text("\n".join(lines) + "\n")
    assert decontaminate(["--input", str(src), "--report-only", "--report", str(src / "decontamination.json"),
                          "--benchmark", "", "--tasks", "STSBenchmark,MSMARCO",
                          "--data-dir", str(ROOT / "tests/data/eval")]) == 0
    r = _publish("--input", src, "--repo-id", "me/x", "--dry-run", "--output-dir", tmp_path / "pub")
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "pub" / "README.md").read_text()
    section = text.split("## Overlap with evaluation data\n")[1].split("\n## ")[0]
    assert "1 of 30 records overlap (1 the same text after normalisation, 0 containing one, 0 near duplicates); " \
           "these records are still in the published data" in section
    assert "| STSBenchmark | 2,758 | 1 | 1 | 1 | 0 | 0 |" in section
    assert "The other 1 tasks: no overlap." in section
    # a report that is not one stops the publish with one line naming it
    (src / "decontamination.json").write_text('{"table": []}')
    r = _publish("--input", src, "--repo-id", "me/x", "--dry-run", "--output-dir", tmp_path / "pub2")
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith(f"error: {src / 'decontamination.json'}: not a report")
