"""The job plan: a deterministic, endless stream of generation jobs, and brainstorm targets.

Job i's task group, teacher model, language and placeholder values depend only on the seed and
the mix settings, so a resumed run asks for the very jobs the killed one would have asked for
next, and skips the ones already saved. Asymmetric groups take their task definitions from the
brainstormed pool in a shuffled round-robin, so every task serves about `examples_per_task`
examples (the paper: 500k examples over 150k unique instructions).
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field
from typing import Iterator

from .placeholders import BRAINSTORM_GROUPS, FIXED_INSTRUCTIONS, SETS
from .settings import SynthConfig


@dataclass(frozen=True)
class Job:
    index: int
    group: str
    model: str
    language: str
    values: dict = field(hash=False)  # placeholder values except {task}
    slot: int = 0  # position among its group's jobs: picks the brainstormed task


class _Weighted:
    def __init__(self, weights: dict[str, float]):
        items = [(k, w) for k, w in weights.items() if w > 0]
        self.keys = [k for k, _ in items]
        self.cum = list(itertools.accumulate(w for _, w in items))

    def __call__(self, rng: random.Random) -> str:
        return rng.choices(self.keys, cum_weights=self.cum)[0]


def jobs(cfg: SynthConfig) -> Iterator[Job]:
    rng = random.Random(f"e5-synth/{cfg.seed}")
    pick_group, pick_model = _Weighted(cfg.group_mix), _Weighted(cfg.models())
    pick_lang = _Weighted(cfg.languages())
    slots = dict.fromkeys(cfg.group_mix, 0)
    for index in itertools.count():
        group, model = pick_group(rng), pick_model(rng)
        values = {name: rng.choice(options) for name, options in SETS[group].items()}
        language = pick_lang(rng)
        if group == "bitext":
            target = pick_lang(rng)
            while target == language:
                target = pick_lang(rng)
            values.update(src_lang=language, tgt_lang=target)
        else:
            values["language"] = language
        yield Job(index, group, model, language, values, slots[group])
        slots[group] += 1


def brainstorm_target(cfg: SynthConfig, group: str) -> int:
    """Unique tasks a group's pool should hold for `num_examples` examples."""
    total = sum(cfg.group_mix.values())
    share = cfg.group_mix.get(group, 0) / total
    if share <= 0:
        return 0
    return max(1, math.ceil(cfg.num_examples * share / cfg.examples_per_task))


def brainstorm_model(cfg: SynthConfig, group: str, call: int) -> str:
    return _Weighted(cfg.models())(random.Random(f"e5-synth/{cfg.seed}/brainstorm/{group}/{call}"))


class TaskPicker:
    """Maps a job's slot to a brainstormed task: a shuffled cycle over the pool."""

    def __init__(self, seed: int, pools: dict[str, list[str]]):
        self.pools = pools
        self.order = {}
        for group, pool in pools.items():
            order = list(range(len(pool)))
            random.Random(f"e5-synth/{seed}/tasks/{group}").shuffle(order)
            self.order[group] = order

    def __call__(self, job: Job) -> str:
        if job.group not in BRAINSTORM_GROUPS:
            return FIXED_INSTRUCTIONS[job.group]
        order = self.order.get(job.group)
        if not order:
            raise RuntimeError(f"no brainstormed tasks for {job.group}")
        return self.pools[job.group][order[job.slot % len(order)]]
