"""Hard negatives for records that have none, mined with any sentence-transformers embedder.

The paper (appendix A) mines the public sets' missing negatives from the top-100 of mE5-base;
the synthetic short-short and long-long groups come without one too. This is a thin layer over
`sentence_transformers.util.mine_hard_negatives`, which already does the work well (top-k search,
skipping every labelled positive of a query, range/margin/max-score filters, an embedding cache).
What it adds:
- records in, records out: the records of one `source` (public set) or task group form one
  corpus, so a negative comes from the same kind of text; records that already have a negative
  are passed through and their texts join the corpus;
- false negatives: by default a candidate scoring within 5% of the positive's score is skipped
  (`relative_margin=0.05`, NV-Retriever's TopK-PercPos, Moreira et al. 2024), since an
  unlabelled passage that close to the query is often another right answer;
- the query side may carry each record's instruction (`query_prompt="Instruct: {instruction}\\nQuery: "`
  for an instruction-tuned miner); by default the prefixes follow the miner (`model_prompts`): the
  prompts it saved, E5's "query: " / "passage: " for an E5 model, none for any other;
- the cache folder is keyed by the model's name or path (sentence-transformers keys it by
  `model_card_data.base_model`, which is None for a model loaded from a local folder, so two
  local models would share embeddings), then by the hash of the texts (done by the library);
- the cache survives a kill: the library saves its `.npy` files in place with `np.save`, so it
  is given a private staging folder (links to the intact entries) and what it saves there is
  renamed into the cache once whole; an entry that is damaged anyway (cut by a full disk, an
  older version) is named in one line, dropped and computed again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
import re
import shutil
from collections import defaultdict
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from tqdm.auto import tqdm

from .. import log
from ..config import ConfigError, setting
from ..errors import first_line
from ..schema import negatives


SAMPLING = ("random", "top")


@dataclass
class MiningSettings:
    range_min: int = setting(0, "skip this many top candidates first")
    range_max: int = setting(100, "negatives come from the miner's top-k (paper: top-100 of mE5-base)")
    relative_margin: float | None = setting(
        0.05, "skip candidates scoring above positive - margin*|positive| (false negatives); null: off")
    absolute_margin: float | None = setting(None, "skip candidates scoring above positive - margin")
    max_score: float | None = setting(None, "skip candidates scoring above this (near-duplicates)")
    sampling: str = setting("random", "'random' among the kept top-k, or 'top' (hardest kept)", choices=SAMPLING)
    seed: int = setting(0, "seed of the random sampling")
    batch_size: int = setting(64, "encoding batch size")
    query_prompt: str | None = setting(
        None, "prefix of the query side, may contain {instruction}; null: the model's (its saved 'query' prompt, "
        "E5's 'query: ' for an E5 model, else none)")
    corpus_prompt: str | None = setting(
        None, "prefix of the document side; null: the model's (its saved document prompt, E5's 'passage: ', else none)")
    cache_dir: str | None = setting(None, "embedding cache folder (per model, then per text list)")

    def check(self) -> None:
        """Values a type check cannot catch, named before any model is loaded."""
        if not 0 <= self.range_min < self.range_max:
            raise ConfigError(f"'range_min' = {self.range_min}, 'range_max' = {self.range_max}: "
                              "need 0 <= range_min < range_max")
        if self.batch_size < 1:
            raise ConfigError(f"'batch_size' = {self.batch_size} must be at least 1")
        for key in ("relative_margin", "absolute_margin"):
            if (getattr(self, key) or 0) < 0:
                raise ConfigError(f"'{key}' = {getattr(self, key)} must be >= 0 (or null: off)")


def load_embedder(name_or_path: str, max_seq_length: int | None = None, device: str | None = None):
    from sentence_transformers import SentenceTransformer

    from ..sources import load_error

    try:
        model = SentenceTransformer(name_or_path, device=device)
    except OSError as e:  # transformers' and the Hub's "not found" / "cannot connect"
        raise load_error(name_or_path, "--model", e) from None
    if max_seq_length:
        model.max_seq_length = max_seq_length
    return model


# E5 models that expect "query: " / "passage: " and save no prompts (intfloat's model cards)
E5_PREFIXED = re.compile(r"(multilingual-)?e5-(small|base|large)(-v2)?", re.IGNORECASE)
DOCUMENT_PROMPTS = ("document", "passage", "corpus")


def model_prompts(model, name: str) -> tuple[str, str, str]:
    """The query and document prefixes `model` (loaded from `name`) expects, and why."""
    saved = getattr(model, "prompts", None) or {}
    document = next((saved[k] for k in DOCUMENT_PROMPTS if k in saved), None)
    if saved.get("query") or document:  # sentence-transformers saves '' for a model without prompts
        return saved.get("query") or "", document or "", "the prompts the model saved"
    if E5_PREFIXED.fullmatch(Path(name.rstrip("/")).name):
        return "query: ", "passage: ", "E5's prefixes, by the model's name"
    return "", "", "the model saves no prompts"


def fill_prompts(settings, model, name: str) -> None:
    """Set the query_prompt and corpus_prompt left null to the model's, and say what they are."""
    if settings.query_prompt is not None and settings.corpus_prompt is not None:
        return
    query, document, why = model_prompts(model, name)
    settings.query_prompt = query if settings.query_prompt is None else settings.query_prompt
    settings.corpus_prompt = document if settings.corpus_prompt is None else settings.corpus_prompt
    log.say(f"prefixes: queries {settings.query_prompt!r}, documents {settings.corpus_prompt!r} ({why}; "
            "--query-prompt and --corpus-prompt set them)")


def group_key(rec: dict) -> str:
    return rec.get("source") or rec.get("task_group") or ""


def anchor(rec: dict, query_prompt: str) -> str:
    prompt = query_prompt.replace("{instruction}", rec.get("instruction") or "") if "{instruction}" in query_prompt \
        else query_prompt
    return prompt + rec["query"]


def cache_folder(cache_dir: str | None, model_id: str) -> str | None:
    if not cache_dir:
        return None
    return str(Path(cache_dir) / hashlib.sha256(model_id.encode()).hexdigest()[:16])


STAGING = ".staging-"


def intact(path: Path) -> str | None:
    """None for a whole .npy file, else what is wrong with it (read from its header and size,
    not its data)."""
    import numpy as np

    try:
        with path.open("rb") as f:
            fmt = np.lib.format
            version = fmt.read_magic(f)
            shape, _, dtype = (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(f)
            start = f.tell()
    except (ValueError, EOFError, OSError) as e:
        return f"unreadable header ({first_line(e, 100)})"
    if dtype.hasobject:
        return "holds Python objects, not embeddings"
    want = start + int(np.prod(shape)) * dtype.itemsize
    size = path.stat().st_size
    return None if size == want else f"{size} bytes where its header promises {want}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        pass
    return True


@contextmanager
def staged_cache(folder: str):
    """A staging folder for one `mine_hard_negatives` call over the cache `folder` (see the
    module docstring): damaged entries are dropped first, new ones moved in at the end."""
    cache = Path(folder)
    cache.mkdir(parents=True, exist_ok=True)
    for old in cache.glob(STAGING + "*"):  # left by a killed run
        pid = old.name.removeprefix(STAGING)
        if not (pid.isdigit() and _alive(int(pid))):
            shutil.rmtree(old, ignore_errors=True)
    staging = cache / f"{STAGING}{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    for entry in sorted(cache.glob("*.npy")):
        why = intact(entry)
        if why:
            log.note(f"{entry}: a damaged embedding cache entry ({why}); dropped, computing it again")
            entry.unlink(missing_ok=True)
            continue
        try:
            os.link(entry, staging / entry.name)
        except OSError:  # a file system without hard links
            shutil.copy2(entry, staging / entry.name)
    try:
        yield str(staging)
        for entry in staging.glob("*.npy"):
            if not (cache / entry.name).exists() and intact(entry) is None:
                os.replace(entry, cache / entry.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def mine(records: Iterable[dict], model, settings: MiningSettings | None = None, *,
         model_id: str = "", extra_corpus: Iterable[str] = (), progress: bool = True) -> tuple[list[dict], dict]:
    """Fill `negative` where the record has none; returns (all records, counts {needed, mined, not_found}).

    `extra_corpus`: more candidate texts (e.g. a BEIR corpus) added to every group's corpus.
    A record gets no negative (stays None) when every candidate was filtered out.
    """
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    settings = settings or MiningSettings()
    if settings.query_prompt is None or settings.corpus_prompt is None:
        settings = dataclasses.replace(settings)
        fill_prompts(settings, model, model_id)
    if settings.cache_dir and not model_id:
        raise ValueError("mining: a cache_dir needs model_id (the model's name or path) to key the cache by")
    records = [dict(r) for r in records]
    extra_corpus = list(extra_corpus)
    groups = defaultdict(list)
    for i, rec in enumerate(records):
        groups[group_key(rec)].append(i)
    counts = {"needed": sum(not negatives(r) for r in records), "mined": 0, "not_found": 0}
    todo = {k: idx for k, idx in groups.items() if any(not negatives(records[i]) for i in idx)}
    for idx in tqdm(todo.values(), desc="mining", unit="group", disable=not progress or len(todo) < 2):
        anchors = {i: anchor(records[i], settings.query_prompt) for i in idx}
        needy = [i for i in idx if not negatives(records[i])]
        wanted = {anchors[i] for i in needy}
        # every labelled positive of a query we mine for goes in, so none can come back as a negative
        pairs = list(dict.fromkeys((anchors[i], records[i]["positive"]) for i in idx if anchors[i] in wanted))
        corpus = list(dict.fromkeys([records[i]["positive"] for i in idx]
                                    + [n for i in idx for n in negatives(records[i])] + extra_corpus))
        random.seed(settings.seed)  # the library samples with the global `random`
        folder = cache_folder(settings.cache_dir, model_id)
        with staged_cache(folder) if folder else nullcontext() as staging:
            mined = mine_hard_negatives(
                Dataset.from_dict({"anchor": [a for a, _ in pairs], "positive": [p for _, p in pairs]}), model,
                anchor_column_name="anchor", positive_column_name="positive", corpus=corpus,
                range_min=settings.range_min, range_max=settings.range_max, max_score=settings.max_score,
                relative_margin=settings.relative_margin, absolute_margin=settings.absolute_margin,
                num_negatives=1, sampling_strategy=settings.sampling, output_format="triplet",
                query_prompt="", corpus_prompt=settings.corpus_prompt,  # "" = no model-default prompt either
                batch_size=settings.batch_size, verbose=progress, cache_folder=staging)
        found = {(a, p): n for a, p, n in zip(mined["anchor"], mined["positive"], mined["negative"])}
        for i in needy:
            negative = found.get((anchors[i], records[i]["positive"]))
            if negative is None:
                counts["not_found"] += 1
            else:
                records[i]["negative"] = negative
                records[i]["negative_mined_by"] = model_id or None
                counts["mined"] += 1
    return records, counts
