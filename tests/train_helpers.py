"""Shared by the training tests: a tiny Mistral embedder built offline, and a few batches."""

from __future__ import annotations

import faulthandler
import os
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

from recipe.config import load_yaml  # noqa: E402
from recipe.train.config import TrainConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "recipe" / "configs" / "smoke.yaml"
SAMPLE = ROOT / "data" / "samples" / "synthetic_sample.jsonl"


def smoke_config(**overrides) -> TrainConfig:
    cfg = load_yaml(TrainConfig, SMOKE)
    cfg.data = [str(SAMPLE)]
    return replace(cfg, **overrides)


def tiny_model(workdir: Path, warm_lora: bool = True, **overrides):
    """The smoke recipe's model (random tiny Mistral + LoRA), deterministic for the seed. With
    `warm_lora` the LoRA B matrices get random values, as mid-training: at init they are zero,
    which makes every gradient of the A matrices zero and a gradient comparison half blind."""
    from recipe.train.data import complete_negatives, load_examples
    from recipe.train.model import build_model

    cfg = smoke_config(**overrides)
    examples = load_examples(cfg.data, [], cfg.query_template, cfg.seed)
    complete_negatives(examples, cfg.num_negatives, cfg.missing_negatives, cfg.seed)
    torch.manual_seed(0)
    model = build_model(cfg, Path(workdir), [t for e in examples for t in (e.query, e.positive)])
    if warm_lora:
        gen = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    return model, examples, cfg


def mistral_style_tokenizer(folder: Path, texts: list[str]):
    """Mistral-7B-v0.1's tokenizer shape, built offline: a SentencePiece BPE saved as a
    LlamaTokenizer with add_bos_token true and add_eos_token false, loaded back from `folder`."""
    import json

    from tokenizers import SentencePieceBPETokenizer
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    sp = SentencePieceBPETokenizer(unk_token="<unk>")
    sp.train_from_iterator(texts * 5, vocab_size=200, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False)
    PreTrainedTokenizerFast(tokenizer_object=sp._tokenizer, bos_token="<s>", eos_token="</s>",
                            unk_token="<unk>").save_pretrained(folder)
    cfg_path = Path(folder) / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg.update(tokenizer_class="LlamaTokenizer", add_bos_token=True, add_eos_token=False, legacy=False)
    cfg_path.write_text(json.dumps(cfg))
    return AutoTokenizer.from_pretrained(folder)


def columns(examples):
    return [[e.query for e in examples], [e.positive for e in examples], [e.negatives[0] for e in examples]]


def assert_same_gradients(got: dict, want: dict, rel: float = 1e-4) -> None:
    """Each gradient equal to the reference within `rel` of that tensor's largest entry: the
    round-off of another summation order grows with the gradient's scale (entries of ~26 here),
    so a flat tolerance fails on large gradients and sees nothing on small ones."""
    assert want and got.keys() == want.keys()
    for name, ref in want.items():
        scale = ref.abs().max()
        assert scale > 0, f"{name}: zero gradient, the comparison would be blind"
        err = (got[name] - ref).abs().max()
        assert err <= rel * scale, (name, float(err), float(scale))


HANG_SECONDS = 200  # the processes' collectives time out first (COLLECTIVE_TIMEOUT), with their stacks
COLLECTIVE_TIMEOUT = 60  # seconds; a collective of these tests takes milliseconds, even on a busy machine
_watch = None  # faulthandler writes to this file after the process's other objects are gone


def watch_for_hangs(folder: str, rank: int, seconds: float = HANG_SECONDS) -> None:
    """In a spawned process: if it is still running after `seconds`, every thread's stack goes to
    folder/hang-{rank}.txt and the process exits, so a hung collective fails the test instead of
    the suite's time limit, and `spawn` shows where each process stood."""
    global _watch
    _watch = open(Path(folder) / f"hang-{rank}.txt", "w")
    faulthandler.dump_traceback_later(seconds, exit=True, file=_watch)


def spawn(fn, args: tuple, nprocs: int, folder: Path) -> None:
    """`mp.spawn` of processes that call `watch_for_hangs(folder, rank)`; when one fails, the error
    carries the stacks the others' watchdogs wrote (pytest's captured stderr is cut in long logs)."""
    try:
        mp.spawn(fn, args=args, nprocs=nprocs, join=True)
    except mp.ProcessExitedException as e:
        stacks = [f"--- {p.name}\n{p.read_text()}" for p in sorted(Path(folder).glob("hang-*.txt")) if p.stat().st_size]
        raise AssertionError("\n".join([str(e), *stacks])) from e
