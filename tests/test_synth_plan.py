"""The job plan: deterministic, the paper's mixes, placeholders always in set, bitext src != tgt."""

import collections
import itertools

from recipe.config import parse
from recipe.synth import plan
from recipe.synth.placeholders import LANGUAGES, SETS
from recipe.synth.prompts import render
from recipe.synth.request import generation_prompt
from recipe.synth.settings import SynthConfig
from tests.conftest import ROOT


def _jobs(cfg, n):
    return list(itertools.islice(plan.jobs(cfg), n))


def test_same_seed_same_jobs_other_seed_other_jobs():
    cfg = SynthConfig(output_dir="x")
    assert _jobs(cfg, 500) == _jobs(SynthConfig(output_dir="y"), 500)
    assert _jobs(cfg, 500) != _jobs(SynthConfig(output_dir="x", seed=1), 500)


def test_group_language_and_model_mix_follow_the_config():
    cfg = SynthConfig(output_dir="x", model={"gpt-4": 0.75, "gpt-3.5-turbo": 0.25})
    jobs = _jobs(cfg, 20000)
    groups = collections.Counter(j.group for j in jobs)
    assert abs(groups["short-long"] / 20000 - 167 / 507) < 0.015
    assert abs(groups["short-short"] / 20000 - 13 / 507) < 0.006
    english = sum(j.language == "English" for j in jobs) / 20000
    assert abs(english - 0.431) < 0.015
    assert abs(sum(j.model == "gpt-4" for j in jobs) / 20000 - 0.75) < 0.015
    assert len({j.language for j in jobs}) == 93


def test_shipped_recipe_plans_the_papers_teachers_groups_and_languages():
    """recipe/configs/synth_e5.yaml, as a user runs it: GPT-4 for 75% of the jobs and GPT-3.5-Turbo
    for 25%, sampling at temperature 1.0 and top_p 1.0, the paper's group split and language mix
    (section 3.1, Figure 2), about 2.13 examples per brainstormed task."""
    cfg = parse(SynthConfig, ["--config", str(ROOT / "recipe/configs/synth_e5.yaml"), "--output-dir", "x"])
    jobs = _jobs(cfg, 20000)
    assert abs(sum(j.model.startswith("gpt-4") for j in jobs) / 20000 - 0.75) < 0.015
    assert abs(sum(j.model.startswith("gpt-3.5") for j in jobs) / 20000 - 0.25) < 0.015
    groups = collections.Counter(j.group for j in jobs)
    for group, thousands in {"short-long": 167, "long-short": 122, "short-short": 13, "long-long": 17,
                             "sts": 99, "bitext": 89}.items():
        assert abs(groups[group] / 20000 - thousands / 507) < 0.015, group
    assert abs(sum(j.language == "English" for j in jobs) / 20000 - 0.431) < 0.015
    assert (cfg.temperature, cfg.top_p) == (1.0, 1.0)
    # 150k unique instructions over the 319k examples of the four brainstormed groups
    assert abs(cfg.examples_per_task - 319 / 150) < 0.01


def test_every_value_in_set_and_bitext_languages_differ():
    for job in _jobs(SynthConfig(output_dir="x"), 5000):
        for name, value in job.values.items():
            if name in ("language", "src_lang", "tgt_lang"):
                assert value in LANGUAGES
            else:
                assert value in SETS[job.group][name]
        if job.group == "bitext":
            assert job.values["src_lang"] != job.values["tgt_lang"]
        generation_prompt(job, "A task.")  # render() re-checks every value


def test_brainstorm_targets_follow_examples_per_task():
    cfg = SynthConfig(output_dir="x", num_examples=507_000, examples_per_task=2.0)
    assert plan.brainstorm_target(cfg, "short-long") == 83_500
    assert plan.brainstorm_target(SynthConfig(output_dir="x", group_mix={"sts": 1.0}), "short-long") == 0
    assert plan.brainstorm_target(SynthConfig(output_dir="x", num_examples=1), "short-short") == 1


def test_tasks_cycle_through_the_pool_before_repeating():
    cfg = SynthConfig(output_dir="x", group_mix={"long-short": 1.0})
    pool = [f"task {i}" for i in range(7)]
    pick = plan.TaskPicker(0, {"long-short": pool})
    first = [pick(j) for j in _jobs(cfg, 7)]
    assert sorted(first) == pool  # every task once before any repeats
    assert render("long-short", "brainstorm", {}).startswith("Brainstorm a list of potentially useful text classification")
