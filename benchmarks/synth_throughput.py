"""Is the synthesis client ever the bottleneck? Examples per second against a teacher with a
fixed latency, beside the ideal rate (concurrency / latency), and the client's CPU per request.

    python benchmarks/synth_throughput.py [--latency 1.0] [--waves 20] [--concurrency 8,32,128,256]

The teacher double runs in its own process pinned to the last core, the client (the real engine,
`openai` client, parsing and JSONL writes) on core 0, so "ratio" is what one client core sustains.
Brainstorming is done once beforehand and reused, so each row times generation only.
Goal: ratio >= 0.90 up to 200 requests per second.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recipe import cli  # noqa: E402
from recipe.config import parse, setting  # noqa: E402
from recipe.synth.engine import Engine  # noqa: E402
from recipe.synth.settings import SynthConfig  # noqa: E402
from recipe.synth.store import Store  # noqa: E402
from recipe.synth.teacher import make_client  # noqa: E402


def start_teacher(latency: float) -> tuple[subprocess.Popen, int]:
    cores = sorted(os.sched_getaffinity(0))
    proc = subprocess.Popen([sys.executable, "-m", "recipe.synth.fake_teacher", "--latency", str(latency)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            preexec_fn=lambda: os.sched_setaffinity(0, {cores[-1]}))
    port = int(proc.stdout.readline().split()[1])
    return proc, port


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(cfg: SynthConfig, brainstorm_only: bool = False) -> Store:
    client, _ = make_client(cfg)
    store = Store(cfg.output_dir)
    store.add_run({"benchmark": "synth_throughput", "num_examples": cfg.num_examples})  # as synthesize.py does first
    engine = Engine(cfg, client, store)

    async def brainstorm():
        await engine.brainstorm()
        await client.close()

    asyncio.run(brainstorm() if brainstorm_only else engine.run())
    store.close()
    return store


@dataclass
class SynthThroughputSettings:
    latency: float = setting(1.0, "the teacher double's seconds per answer")
    waves: int = setting(20, "examples per row = concurrency x waves")
    concurrency: list[int] = setting([8, 32, 128, 256], "requests in flight, one row each")
    transports: list[str] = setting(["aiohttp", "httpx"], "openai client transports to compare")


def _main(argv: list[str]) -> int:
    args = parse(SynthThroughputSettings, argv)
    levels = args.concurrency

    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    server, port = start_teacher(args.latency)
    os.environ.update(OPENAI_API_KEY="bench", OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1")
    work = Path(tempfile.mkdtemp(prefix="synth-bench-"))
    try:
        base = ["--config", str(ROOT / "recipe/configs/synth_e5.yaml"), "--progress", "false"]
        # brainstorm once, for the largest run; every row reuses the pools
        warm = parse(SynthConfig, base + ["--output-dir", str(work / "warm"), "--num-examples",
                                          str(max(levels) * args.waves), "--concurrency", "8"])
        run(warm, brainstorm_only=True)
        print(f"teacher latency {args.latency:.2f} s, {args.waves} waves per row, client on one core\n")
        print(f"{'transport':>9} {'concurrency':>11} {'examples':>8} {'ideal/s':>8} {'measured/s':>10} {'ratio':>6} "
              f"{'client CPU ms/req':>17} {'client core busy':>16} {'server core busy':>16}")
        for transport, c in [(t, c) for t in args.transports for c in levels]:
            out = work / f"{transport}-c{c}"
            out.mkdir()
            for name in ("tasks.jsonl", "runs.jsonl"):  # the brainstormed pools, in a folder synthesis knows as its own
                shutil.copy(work / "warm" / name, out / name)
            cfg = parse(SynthConfig, base + ["--output-dir", str(out), "--num-examples", str(c * args.waves),
                                             "--concurrency", str(c), "--http-transport", transport])
            wall0, cpu0, srv0 = time.perf_counter(), time.process_time(), cpu_seconds(server.pid)
            store = run(cfg)
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            srv = cpu_seconds(server.pid) - srv0
            rate, ideal = store.n_examples / wall, c / args.latency
            print(f"{transport:>9} {c:>11} {store.n_examples:>8} {ideal:>8.1f} {rate:>10.1f} {rate / ideal:>6.2f} "
                  f"{1000 * cpu / store.requests:>17.2f} {cpu / wall:>15.0%} {srv / wall:>15.0%}")
    finally:
        server.kill()
        shutil.rmtree(work, ignore_errors=True)
    return 0


main = cli.command(_main, doc=__doc__, config=SynthThroughputSettings, module=__name__)
