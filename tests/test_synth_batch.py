"""Batch API mode against the loopback server: half price, exact N, resume and adoption of batches."""

import asyncio
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
from tests.test_synth_engine import cfg_for, examples


def test_batch_mode_end_to_end_half_price(teacher, tmp_path):
    teacher.faults += ["malformed", None, "truncated"]
    synthesize(cfg_for(tmp_path, "--mode", "batch", "--num-examples", "50", "--batch-size", "20",
                       "--batch-poll", "0.05"))
    recs = examples(tmp_path)
    assert len(recs) == 50 and len({r["id"] for r in recs}) == 50
    assert all("batch" in e for e in teacher.log)  # nothing went through the online endpoint
    r = recs[0]
    full = pricing.cost(r["model"], r["usage"]["prompt_tokens"], r["usage"]["completion_tokens"])
    assert r["cost_usd"] == full / 2
    jobs = [e["job"] for e in teacher.log]
    assert len(jobs) == len(set(jobs))  # no request was sent twice
    assert Store(tmp_path).rejected["truncated"] <= 1


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
