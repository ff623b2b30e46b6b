"""recipe/train/run.py's build on several processes as `accelerate launch` starts them (real
accelerate, gloo on CPU): a global batch that does not split evenly over them, a dropout stream of
its own for each from one set of starting weights, an output dir they must all see, and a launch
with more processes than the machine has GPUs."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch

from recipe.config import ConfigError
from tests.train_helpers import COLLECTIVE_TIMEOUT, smoke_config, spawn, watch_for_hangs

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _build(rank: int, world: int, port: int, model: str, out_dirs: list[str], results: str) -> None:
    """One process of `world`: run.build and one step of run.loop; what it saw goes to results/rank.pt."""
    import os

    watch_for_hangs(results, rank)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    from recipe.train import outdir, run
    from recipe.train.batch import make_batch

    cfg = smoke_config(model=model, output_dir=out_dirs[rank], global_batch_size=7, max_steps=1, save_steps=0,
                       process_group_timeout=COLLECTIVE_TIMEOUT)
    try:
        t = run.build(cfg, outdir.inspect(cfg.output_dir))
    except ConfigError as e:
        torch.save({"error": str(e)}, f"{results}/{rank}.pt")
        return
    try:
        seen = {"draws": torch.rand(8),
                "weights": {n: p.detach().clone() for n, p in t.model.named_parameters() if p.requires_grad},
                "rows": len(make_batch(t.examples, t.plan[0], rank, world, cfg.num_negatives).columns[0])}
        run.loop(t)
        torch.save(seen, f"{results}/{rank}.pt")
    finally:
        t.accelerator.end_training()


@pytest.fixture(scope="module")
def base_model(tmp_path_factory) -> str:
    """The smoke recipe's tiny model, built once here: no process builds it (and re-seeds) itself."""
    from recipe.train.model import build_tiny_mistral

    cfg = smoke_config()
    return str(build_tiny_mistral(tmp_path_factory.mktemp("base") / "tiny", ["some words", "other words"] * 50,
                                  cfg.tiny_model, cfg.seed))


def launch(tmp_path: Path, model: str, out_dirs: list[str]) -> list[dict]:
    results = tmp_path / "results"
    results.mkdir()
    spawn(_build, (len(out_dirs), free_port(), model, out_dirs, str(results)), len(out_dirs), results)
    return [torch.load(results / f"{r}.pt", weights_only=False) for r in range(len(out_dirs))]


def test_two_processes_share_7_queries_and_draw_their_own_dropout_from_the_same_weights(tmp_path, base_model):
    out = str(tmp_path / "run")
    ranks = launch(tmp_path, base_model, [out, out])
    assert [r["rows"] for r in ranks] == [3, 4]  # 7 queries: shares that differ by one
    # set_seed(device_specific=True): each process its own dropout stream ...
    assert not torch.equal(ranks[0]["draws"], ranks[1]["draws"])
    # ... from the same starting weights, which DDP takes from process 0
    for name, w in ranks[0]["weights"].items():
        assert torch.equal(w, ranks[1]["weights"][name]), name
    log = (Path(out) / "train_log.jsonl").read_text().splitlines()
    assert len(log) == 1 and '"loss": NaN' not in log[0]
    assert not list(Path(out).glob(".written-by-process-0"))  # the shared-dir probe is gone


def test_an_output_dir_that_is_not_shared_stops_every_process_with_one_line(tmp_path, base_model):
    """Process 1's output_dir stands for another machine's own disk: both stop before loading anything."""
    ranks = launch(tmp_path, base_model, [str(tmp_path / "node0"), str(tmp_path / "node1")])
    for r in ranks:
        assert "1 of 2 processes do not see what process 0 writes there" in r["error"], r
        assert "\n" not in r["error"]


def test_more_processes_than_gpus_on_this_machine_is_refused_before_accelerate_starts(monkeypatch, tmp_path):
    from recipe.train import outdir, run

    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    cfg = smoke_config(output_dir=str(tmp_path / "run"))
    with pytest.raises(ConfigError, match=r"^8 processes were launched on this machine, which has 4 GPU\(s\): "
                                          r"launch one per GPU \(accelerate launch --num_processes 4"):
        run.build(cfg, outdir.inspect(cfg.output_dir))
    assert not (tmp_path / "run").exists()


def _hang(rank: int, folder: str) -> None:
    watch_for_hangs(folder, rank, seconds=1)
    if rank == 1:
        import time

        time.sleep(60)  # stands for a collective that never returns


def test_a_hung_process_fails_the_test_with_its_stack(tmp_path):
    with pytest.raises(AssertionError) as failed:
        spawn(_hang, (str(tmp_path),), 2, tmp_path)
    assert "process 1 terminated with exit code 1" in str(failed.value)
    assert "hang-1.txt" in str(failed.value) and "in _hang" in str(failed.value)
