"""The data mix recipe: the shipped full-data recipe covers the paper's sets; a mix reads public
and synthetic sources with their ratios; bad sources are one-line errors naming the entry."""

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from recipe.config import load_yaml
from recipe.data import mix, public
from tests.test_data_public import FixtureFetch

ROOT = Path(__file__).parents[1]
SYNTH = Path(__file__).parent / "data" / "synth_output"


def test_full_data_recipe_lists_every_public_set_and_the_synthetic_data():
    cfg = load_yaml(mix.MixConfig, ROOT / "recipe" / "configs" / "data_full.yaml")
    sources = mix.check_sources(cfg.sources)
    assert [s["public"] for s in sources if "public" in s] == list(public.SOURCES)
    assert [s["name"] for s in sources if "records" in s] == ["synthetic"]
    assert all("ratio" not in s for s in sources)  # the paper's ratios, from the registry


def test_mix_reads_sources_with_ratios(monkeypatch):
    cfg = mix.MixConfig(sources=[{"records": str(SYNTH), "name": "synthetic"}, {"public": "nli"},
                                 {"public": "hotpotqa", "ratio": 1.0}, {"records": str(SYNTH), "name": "half", "ratio": 0.5}],
                        seed=3)
    fetches = {name: FixtureFetch(name) for name in ("nli", "hotpotqa")}

    def fetch(hub_id, config, split):
        name = next(n for n, s in public.SOURCES.items() if s.hub_id == hub_id)
        return fetches[name](hub_id, config, split)

    records = list(mix.iter_mix(cfg, fetch=fetch))
    counts = Counter(r["source"] for r in records)
    assert counts["synthetic"] == 30 and counts["nli"] == 2 and counts["hotpotqa"] == 3
    assert 5 <= counts["half"] <= 25  # Bernoulli(0.5) over 30 records
    again = [r["id"] for r in mix.iter_mix(cfg, fetch=fetch) if r["source"] == "half"]
    assert again == [r["id"] for r in records if r["source"] == "half"]


@pytest.mark.parametrize("source, message", [
    ({"public": "msmarco"}, "sources[1]: unknown public dataset 'msmarco'"),
    ({"public": "nq", "records": "x"}, "sources[1]: give exactly one of"),
    ({"public": "nq", "ratio": 1.5}, "sources[1]: ratio must be a number in (0, 1]"),
    ({"records": "x", "weight": 2}, "sources[1]: unknown key(s) weight"),
])
def test_bad_sources_are_named(source, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        list(mix.iter_mix(mix.MixConfig(sources=[source])))


def test_build_mix_command_writes_records(tmp_path):
    recipe = tmp_path / "mix.yaml"
    recipe.write_text(f"sources:\n  - records: {SYNTH}\n    name: synthetic\n")
    r = subprocess.run([sys.executable, str(ROOT / "data" / "build_mix.py"), "--config", str(recipe),
                        "--output", str(tmp_path / "mix.jsonl")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "30 records" in r.stdout
    rows = [json.loads(l) for l in (tmp_path / "mix.jsonl").read_text().strip("\n").split("\n")]
    assert len(rows) == 30 and {x["source"] for x in rows} == {"synthetic"}
    r = subprocess.run([sys.executable, str(ROOT / "data" / "build_mix.py"), "--config", str(recipe)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr == "error: command line: --output is required\n"
