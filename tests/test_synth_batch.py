"""Batch API mode against the loopback server: half price, exact N, resume and adoption of batches."""

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time

import openai

from recipe.synth import pricing
from recipe.synth.batch import BatchRunner
from recipe.synth.run import synthesize
from recipe.synth.store import Store
from tests.conftest import ROOT
from tests.test_synth_engine import cfg_for, check_structured_outputs, examples


def test_batch_mode_end_to_end_half_price(teacher, tmp_path):
    teacher.generation_faults += ["malformed", None, "truncated"]  # whatever the task group: same reasons
    synthesize(cfg_for(tmp_path, "--mode", "batch", "--num-examples", "50", "--batch-size", "20",
                       "--batch-poll", "0.05", "--list-prices", "true"))
    recs = examples(tmp_path)
    assert len(recs) == 50 and len({r["id"] for r in recs}) == 50
    assert all("batch" in e for e in teacher.log)  # nothing went through the online endpoint
    r = recs[0]
    full = pricing.cost(r["model"], r["usage"]["prompt_tokens"], r["usage"]["completion_tokens"])
    assert r["cost_usd"] == full / 2
    jobs = [e["job"] for e in teacher.log]
    assert len(jobs) == len(set(jobs))  # no request was sent twice
    assert sorted(e["fault"] for e in teacher.log if e["fault"]) == ["malformed", "truncated"]
    assert Store(tmp_path).rejected == {"not_json": 1, "truncated": 1}


def test_batch_mode_sends_each_groups_schema_with_structured_outputs(teacher, tmp_path):
    synthesize(cfg_for(tmp_path, "--mode", "batch", "--num-examples", "40", "--batch-poll", "0.05",
                       "--structured-outputs", "true"))
    check_structured_outputs(teacher.log, True)
    assert len(examples(tmp_path)) == 40


def test_batch_mode_filters_faulty_answers_with_their_reasons(teacher, tmp_path):
    # one brainstorming group, one batch per round: the faults hit the first generation answers in order
    teacher.generation_faults += ["malformed", "fenced", "prose", "truncated", "missing_key", "same_pos_neg",
                                  None, "duplicate", "duplicate"]
    synthesize(cfg_for(tmp_path, "--mode", "batch", "--num-examples", "12", "--group-mix", "{short-long: 1}",
                       "--batch-poll", "0.05"))
    recs = examples(tmp_path)
    assert len(recs) == 12 and len({(r["query"], r["positive"], r["negative"]) for r in recs}) == 12
    assert Store(tmp_path).rejected == {"not_json": 1, "truncated": 1, "missing_key:user_query": 1,
                                        "positive_equals_negative": 1, "duplicate": 2}
    brainstorms = [e for e in teacher.log if e["kind"] == "brainstorm"]
    assert brainstorms and all(e["fault"] is None for e in brainstorms)
    assert not teacher.generation_faults  # every fault was served, to a generation request


def test_online_and_batch_modes_send_the_same_body_for_each_job(teacher, tmp_path):
    args = ("--num-examples", "12", "--concurrency", "1", "--structured-outputs", "true", "--batch-poll", "0.05")
    synthesize(cfg_for(tmp_path / "online", *args))
    online = {e["job"]: e["body"] for e in teacher.log}
    teacher.log.clear()
    teacher.counter = itertools.count()  # the same brainstormed tasks again, so the same generation prompts
    synthesize(cfg_for(tmp_path / "batch", *args, "--mode", "batch"))
    batch = {e["job"]: e["body"] for e in teacher.log}
    assert {j.split("/")[0] for j in online} == {"brainstorm", "generate"} and len(online) == 4 + 12
    assert online == batch  # the body as the server read it: the SDK's encoding and the batch file's agree
    assert {"model", "messages", "temperature", "top_p", "max_tokens", "response_format"} == set(online["generate/0"])


def test_pending_batch_is_resumed_after_kill9(teacher, tmp_path):
    teacher.batch_delay = 2.0
    cmd = [sys.executable, str(ROOT / "data/synthesize.py"), "--config", str(ROOT / "recipe/configs/synth_e5.yaml"),
           "--output-dir", str(tmp_path), "--num-examples", "30", "--mode", "batch", "--batch-poll", "0.05",
           "--progress", "false"]
    proc = subprocess.Popen(cmd, env=dict(os.environ), stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        state = (tmp_path / "batches.jsonl").read_text() if (tmp_path / "batches.jsonl").exists() else ""
        rows = [json.loads(x) for x in state.splitlines() if x.endswith("}")]
        if any(r["name"].startswith("generate") and r.get("status") == "submitted" for r in rows):
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    created = len(teacher.batches)
    teacher.batch_delay = 0.0
    proc = subprocess.run(cmd, env=dict(os.environ), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "resuming" in proc.stderr
    assert len(examples(tmp_path)) == 30
    # the pending batch was polled, not sent again: every job was answered once
    jobs = [e["job"] for e in teacher.log]
    assert len(jobs) == len(set(jobs))
    assert len(teacher.batches) == created  # 30 jobs in the pending batch: no new one needed


def test_batch_created_just_before_a_crash_is_adopted(teacher, tmp_path):
    cfg = cfg_for(tmp_path, "--mode", "batch", "--num-examples", "5", "--group-mix", "{sts: 1}",
                  "--batch-poll", "0.05")
    store = Store(tmp_path)
    store.add_run({"started": "now"})  # what synthesize() writes before any request
    runner = BatchRunner(cfg, openai.AsyncOpenAI(), store)
    name = runner.prepare("generate", runner.generation_requests())

    async def crash_after_create():
        data = (runner.dir / f"{name}.input.jsonl").read_bytes()
        f = await runner.client.files.create(file=("x.jsonl", data), purpose="batch")
        store.update_batch({"name": name, "input_file_id": f.id, "status": "uploaded"})
        await runner.client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                           completion_window="24h")
        # ... and the process dies before batches.jsonl records the batch id

    asyncio.run(crash_after_create())
    store.close()
    synthesize(cfg)
    assert len(teacher.batches) == 1  # adopted, not created twice
    assert len(examples(tmp_path)) == 5
    assert json.loads((tmp_path / "batches.jsonl").read_text().splitlines()[-1])["status"] == "ingested"


def _saved_jobs(out):
    return {json.loads(line)["job"] for name in ("examples", "rejected")
            if (out / f"{name}.jsonl").exists() for line in (out / f"{name}.jsonl").read_text().splitlines()}


def test_resumed_batch_run_never_asks_again_for_a_saved_job(teacher, tmp_path):
    batch = ["--mode", "batch", "--batch-size", "10", "--batch-poll", "0.05"]
    synthesize(cfg_for(tmp_path, *batch, "--num-examples", "20"))
    saved = {f"generate/{j}" for j in _saved_jobs(tmp_path)}
    asked_before = len(teacher.log)
    # rejections in the second run: it takes more than one round to reach 40
    teacher.generation_faults += ["malformed", "truncated", "missing_key"]
    cmd = [sys.executable, str(ROOT / "data/synthesize.py"), "--config", str(ROOT / "recipe/configs/synth_e5.yaml"),
           "--output-dir", str(tmp_path), "--num-examples", "40", "--progress", "false", *batch]
    done = subprocess.run(cmd, env=dict(os.environ), capture_output=True, text=True, timeout=120)
    assert not teacher.resubmitted, f"paid-for requests sent again: {teacher.resubmitted[:5]}"
    assert done.returncode == 0, done.stderr
    assert not saved & {e["job"] for e in teacher.log[asked_before:]}
    jobs = [e["job"] for e in teacher.log]
    assert len(jobs) == len(set(jobs))  # and no job of the second run was asked twice either
    assert len(examples(tmp_path)) == 40
    reasons = Store(tmp_path).rejected  # the first key of whichever group the fault hit is missing
    assert reasons.pop("not_json") == reasons.pop("truncated") == 1
    assert len(reasons) == 1 and next(iter(reasons)).startswith("missing_key:") and sum(reasons.values()) == 1
