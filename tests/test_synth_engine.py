"""The online engine against a real loopback server: exact counts, filters, faults, resume, errors."""

import collections
import json
import re
import socket
import time

import pytest

from recipe.config import ConfigError, parse
from recipe.synth.run import synthesize
from recipe.synth.settings import SynthConfig
from recipe.synth.store import Store
from tests.conftest import ROOT, load_script

RECIPE = str(ROOT / "recipe/configs/synth_e5.yaml")
FIELDS = {"id", "job", "task_group", "instruction", "query", "positive", "negative", "language",
          "raw", "placeholders", "model", "sampling", "usage", "cost_usd"}


def cfg_for(out, *extra):
    return parse(SynthConfig, ["--config", RECIPE, "--output-dir", str(out), "--progress", "false",
                               "--max-retries", "1", *extra])


def examples(out):
    return [json.loads(x) for x in (out / "examples.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
def test_end_to_end_exact_count_fields_and_paper_settings(teacher, tmp_path, transport):
    synthesize(cfg_for(tmp_path, "--num-examples", "60", "--concurrency", "8", "--http-transport", transport))
    recs = examples(tmp_path)
    assert len(recs) == 60 and len({r["id"] for r in recs}) == 60
    for r in recs:
        assert FIELDS <= r.keys()
        assert r["query"] and r["positive"] and r["instruction"] and r["language"]
        assert (r["negative"] is None) == (r["task_group"] in ("short-short", "long-long"))
        if r["task_group"] == "sts":
            assert r["instruction"] == "Retrieve semantically similar text."
        if r["task_group"] == "bitext":
            assert r["instruction"] == "Retrieve parallel sentences."
            assert r["placeholders"]["src_lang"] != r["placeholders"]["tgt_lang"]
    kinds = collections.Counter(e["kind"] for e in teacher.log)
    assert kinds["unknown"] == 0 and kinds["brainstorm"] == 4  # one call per asymmetric group
    brainstormed = {t for line in (tmp_path / "tasks.jsonl").read_text().splitlines() for t in json.loads(line)["tasks"]}
    assert all(r["instruction"] in brainstormed for r in recs if r["task_group"] not in ("sts", "bitext"))
    assert {(e["temperature"], e["top_p"]) for e in teacher.log} == {(1.0, 1.0)}
    assert {e["model"] for e in teacher.log} <= {"gpt-4-turbo", "gpt-3.5-turbo"}


def test_faults_are_filtered_counted_and_never_exceed_n(teacher, tmp_path):
    # one worker and one group (no brainstorm), so the faults hit requests in this order
    teacher.faults += [None, "malformed", "fenced", "prose", "truncated", "missing_key",
                       "same_pos_neg", "duplicate", "duplicate", "500", "429:1"]
    store = synthesize(cfg_for(tmp_path, "--num-examples", "12", "--concurrency", "1", "--group-mix", "{sts: 1}"))
    recs = examples(tmp_path)
    assert len(recs) == 12 == store.n_examples
    keys = {(r["query"], r["positive"], r["negative"]) for r in recs}
    assert len(keys) == 12
    reasons = Store(tmp_path).rejected
    assert reasons == {"not_json": 1, "truncated": 1, "missing_key:S1": 1, "positive_equals_negative": 1,
                       "duplicate": 2}
    assert [e["kind"] for e in teacher.log] == ["sts"] * len(teacher.log)
    # Retry-After: 1 on the 429 was honoured before the next request
    i = next(i for i, e in enumerate(teacher.log) if e["fault"] == "429:1")
    assert teacher.log[i + 1]["t"] - teacher.log[i]["t"] >= 0.95


def test_rerun_resumes_without_asking_again(teacher, tmp_path):
    synthesize(cfg_for(tmp_path, "--num-examples", "20", "--concurrency", "4"))
    first = {e["job"] for e in teacher.log}
    n_requests = len(teacher.log)
    synthesize(cfg_for(tmp_path, "--num-examples", "20"))
    assert len(teacher.log) == n_requests  # complete: nothing requested
    synthesize(cfg_for(tmp_path, "--num-examples", "35", "--concurrency", "4"))
    later = [e["job"] for e in teacher.log[n_requests:]]
    assert not first & set(later)
    recs = examples(tmp_path)
    assert len(recs) == 35 and len({r["job"] for r in recs}) == 35


@pytest.mark.parametrize("mode", ["online", "batch"])
def test_duplicate_of_an_answer_saved_before_a_restart_is_rejected(teacher, tmp_path, mode):
    args = ["--group-mix", "{sts: 1}", "--concurrency", "1", "--mode", mode, "--batch-poll", "0.05"]
    synthesize(cfg_for(tmp_path, *args, "--num-examples", "5"))
    # the teacher repeats its last answer, which the first run saved; the store is opened anew
    teacher.generation_faults.append("duplicate")
    synthesize(cfg_for(tmp_path, *args, "--num-examples", "6"))
    recs = examples(tmp_path)
    assert len(recs) == 6 and len({(r["query"], r["positive"], r["negative"]) for r in recs}) == 6
    assert Store(tmp_path).rejected == {"duplicate": 1}


def test_model_mix_and_cost(teacher, tmp_path):
    # the loopback teacher stands for OpenAI here: its answers are priced at the list prices
    synthesize(cfg_for(tmp_path, "--num-examples", "80", "--model", "{gpt-4o: 0.5, gpt-4o-mini: 0.5}",
                       "--list-prices", "true"))
    recs = examples(tmp_path)
    by_model = collections.Counter(r["model"] for r in recs)
    assert set(by_model) == {"gpt-4o", "gpt-4o-mini"} and min(by_model.values()) > 20
    r = recs[0]
    rate = {"gpt-4o": (2.5, 10.0), "gpt-4o-mini": (0.15, 0.6)}[r["model"]]
    expect = (r["usage"]["prompt_tokens"] * rate[0] + r["usage"]["completion_tokens"] * rate[1]) / 1e6
    assert r["cost_usd"] == pytest.approx(expect)


def test_a_local_teacher_costs_unknown_not_list_prices(teacher, tmp_path):
    """A server that is not OpenAI's answering as gpt-4o does not cost gpt-4o's prices: the
    records, the run's last line and the dataset card say the cost is unknown."""
    from recipe.data import card
    from recipe.synth.run import summary

    store = synthesize(cfg_for(tmp_path, "--num-examples", "5", "--model", "gpt-4o"))
    recs = examples(tmp_path)
    assert recs and all(r["model"] == "gpt-4o" and r["cost_usd"] is None for r in recs)
    assert summary(store).endswith("cost unknown (no price for the teacher here; prices: names one)")
    side = Store(tmp_path)
    text = card.render(card.summarize(recs, list(side.read("runs")), list(side.read("tasks")),
                                      list(side.read("rejected"))), "org/name", ["short-long"])
    assert "cost unknown (no call had a known price)" in text and "0.0000 USD" not in text
    assert "| `gpt-4o` |" in text and text.count("| unknown |") >= 1
    # a price named in the recipe still counts
    priced = tmp_path / "priced"
    synthesize(cfg_for(priced, "--num-examples", "2", "--model", "gpt-4o", "--prices", "{gpt-4o: [1, 1]}"))
    assert all(r["cost_usd"] > 0 for r in examples(priced))


def test_max_cost_stops_cleanly_then_resumes(teacher, tmp_path, capsys):
    script = load_script("data/synthesize.py")
    args = ["--config", RECIPE, "--output-dir", str(tmp_path), "--progress", "false", "--num-examples", "40",
            "--model", "pricey", "--prices", "{pricey: [1000, 1000]}", "--concurrency", "2"]
    assert script.main(args + ["--max-cost", "2"]) == 3
    err = capsys.readouterr().err
    assert "budget reached" in err and "run the same command" in err
    spent = Store(tmp_path)
    assert 0 < spent.n_examples < 40 and spent.cost < 2 + 2 * 1.2  # overshoot: at most the requests in flight
    assert script.main(args + ["--max-cost", "1000"]) == 0
    assert len(examples(tmp_path)) == 40
    capsys.readouterr()
    # a run with nothing left to do says that, once, and not also "done"
    assert script.main(args + ["--max-cost", "1000"]) == 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nothing to do: 40 examples in"), lines


def test_outage_stops_cleanly_and_keeps_what_was_saved(teacher, tmp_path):
    synthesize(cfg_for(tmp_path, "--num-examples", "5"))
    teacher.faults += ["500"] * 50
    from recipe.synth.teacher import Outage

    with pytest.raises(Outage, match="no answer from the teacher"):
        synthesize(cfg_for(tmp_path, "--num-examples", "10", "--max-retries", "0", "--max-outage", "0.5",
                           "--concurrency", "2"))
    assert len(examples(tmp_path)) == 5


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("setup,args,message", [
    (lambda mp, t: mp.delenv("OPENAI_API_KEY"), [], "OPENAI_API_KEY is not set"),
    (lambda mp, t: mp.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{_free_port()}/v1"), [], "cannot reach the teacher"),
    (lambda mp, t: mp.setenv("OPENAI_BASE_URL", "localhost:8000"), [], "is not a URL"),
    (lambda mp, t: None, ["--concurency", "3"], "unknown setting --concurency (did you mean --concurrency?)"),
    (lambda mp, t: t.faults.append("401"), [], "rejected the API key"),
    (lambda mp, t: None, ["--azure"], "AZURE_OPENAI_ENDPOINT is not set"),
])
def test_bad_input_is_one_clear_line(teacher, tmp_path, monkeypatch, capsys, setup, args, message):
    setup(monkeypatch, teacher)
    script = load_script("data/synthesize.py")
    code = script.main(["--config", RECIPE, "--output-dir", str(tmp_path / "o"), "--progress", "false",
                        "--num-examples", "3", "--concurrency", "1", *args])
    err = capsys.readouterr().err.strip()
    assert code != 0 and err.startswith("error: ") and message in err and len(err.splitlines()) == 1


def test_unwritable_output_folder_is_one_line(teacher, tmp_path, capsys):
    (tmp_path / "f").write_text("")
    code = load_script("data/synthesize.py").main(["--output-dir", str(tmp_path / "f" / "o"), "--progress", "false"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "cannot write to output folder" in err and len(err.splitlines()) == 1


def test_unknown_key_in_recipe_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("num_exampels: 3\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: unknown config key 'num_exampels'"):
        parse(SynthConfig, ["--config", str(bad)])


def test_timeouts_and_dropped_connections_are_retried(teacher, tmp_path):
    teacher.faults += ["slow:3", "drop"]  # the first request outlives the timeout, the second is cut
    synthesize(cfg_for(tmp_path, "--num-examples", "3", "--concurrency", "1", "--group-mix", "{sts: 1}",
                       "--request-timeout", "0.5", "--max-retries", "3"))
    assert len(examples(tmp_path)) == 3
    assert [e["fault"] for e in teacher.log[:2]] == ["slow:3", "drop"]
    assert len(teacher.log) == 5  # both failed attempts were tried again, nothing else was lost


def test_rate_limits_hold_requests_back():
    import asyncio

    from recipe.synth.limits import RateLimiter

    async def timed(limiter, tokens):
        t = time.perf_counter()
        for n in tokens:
            await limiter.acquire(n)
        return time.perf_counter() - t

    # 600 tokens a minute = 10 a second: a full bucket lets 600 through, the next 5 wait ~0.5 s
    assert 0.4 < asyncio.run(timed(RateLimiter(tpm=600), [600, 5])) < 1.5
    # 120 requests a minute = 2 a second: the 121st request waits ~0.5 s
    assert 0.4 < asyncio.run(timed(RateLimiter(rpm=120), [1] * 121)) < 1.5
    # a settled request that used fewer tokens than reserved gives the difference back
    limiter = RateLimiter(tpm=600)
    asyncio.run(timed(limiter, [600]))
    limiter.settle(600, 100)
    assert asyncio.run(timed(limiter, [400])) < 0.2


GENERATION_KEYS = {"short-long": ["user_query", "positive_document", "hard_negative_document"],
                   "long-short": ["input_text", "label", "misleading_label"],
                   "short-short": ["input", "positive_document"], "long-long": ["input", "positive_document"],
                   "sts": ["S1", "S2", "S3"], "bitext": ["S1", "S2", "S3"]}


def check_structured_outputs(log, on: bool, min_tasks: int = 1) -> None:
    """Each request carries its own group's answer schema when on, and no response_format when off."""
    kinds = {e["kind"] for e in log}
    assert kinds >= {"brainstorm", "sts", "bitext", "short-long", "long-short"}
    for e in log:
        rf = e["response_format"]
        if not on:
            assert rf is None
            continue
        assert rf["type"] == "json_schema" and rf["json_schema"]["strict"] is True
        schema = rf["json_schema"]["schema"]
        assert schema["type"] == "object" and schema["additionalProperties"] is False
        if e["kind"] == "brainstorm":
            assert schema["required"] == ["tasks"] and schema["properties"]["tasks"]["items"] == {"type": "string"}
            assert schema["properties"]["tasks"]["minItems"] == min_tasks
        else:
            assert schema["required"] == GENERATION_KEYS[e["kind"]] == list(schema["properties"])
            assert all(p == {"type": "string"} for p in schema["properties"].values())


@pytest.mark.parametrize("on", [False, True])
def test_structured_outputs_send_each_groups_schema_only_when_on(teacher, tmp_path, on):
    synthesize(cfg_for(tmp_path, "--num-examples", "40", "--concurrency", "4", "--structured-outputs", str(on).lower()))
    check_structured_outputs(teacher.log, on)
    recs = examples(tmp_path)
    assert len(recs) == 40
    assert all(r["sampling"].get("structured_outputs", False) is on for r in recs)
    # a brainstorm in the schema's shape, {"tasks": [...]}, fills the pools like the paper's bare list
    pools = [json.loads(x)["tasks"] for x in (tmp_path / "tasks.jsonl").read_text().splitlines()]
    assert len(pools) == 4 and all(len(p) == 20 for p in pools)


def test_a_brainstorm_schema_asks_for_at_least_min_tasks_per_brainstorm(teacher, tmp_path):
    synthesize(cfg_for(tmp_path, "--num-examples", "12", "--concurrency", "2", "--structured-outputs", "true",
                       "--min-tasks-per-brainstorm", "8"))
    check_structured_outputs(teacher.log, True, min_tasks=8)


def test_max_cost_stops_one_worker_too(teacher, tmp_path):
    # one request at a time (a local teacher's setting): the budget is noticed only after the last
    # answer came back, by the one worker left; it must stop, not wait for a request that never comes
    import threading

    cfg = cfg_for(tmp_path, "--num-examples", "40", "--model", "pricey", "--prices", "{pricey: [1000, 1000]}",
                  "--concurrency", "1", "--max-cost", "1", "--group-mix", "{sts: 1}")
    outcome = []

    def run():
        try:
            synthesize(cfg)
        except BaseException as e:  # noqa: BLE001 - the outcome is what the test looks at
            outcome.append(e)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), "synthesis hung at the budget"
    assert type(outcome[0]).__name__ == "BudgetReached"
    assert 0 < Store(tmp_path).n_examples < 40


def test_progress_shows_life_from_the_first_second(teacher, tmp_path, capsys):
    """A start line before any answer, a bar for the brainstorm step, then a bar for the examples
    (whose rate and ETA are the generation's own), tokens counted as every answer comes in."""
    cfg = parse(SynthConfig, ["--config", RECIPE, "--output-dir", str(tmp_path / "out"), "--num-examples", "12",
                              "--progress", "true"])
    synthesize(cfg)
    err = capsys.readouterr().err
    first = err.lstrip().splitlines()[0]
    assert first.startswith("synthesizing 12 examples into ") and "brainstorm call(s) for the task lists" in first
    brainstorm, examples = err.find("brainstorm:"), err.find("examples:")
    assert 0 < brainstorm < examples, err[-2000:]
    assert re.search(r"brainstorm: .*tok \d+(\.\d)?k", err), err[-2000:]  # not 0.00M while it brainstorms
    assert re.search(r"examples: 100%.*12/12.*tok \d+(\.\d)?k", err), err[-2000:]
