"""Find training texts that overlap the evaluation data: exact, near duplicate, or containing it.

A teacher may write out what it memorised from a benchmark's test set, and public training sets
share sources with evaluation tasks; either makes the scores of a model trained on them
untrustworthy. Three tests, each on every query, positive and hard negative of every record,
against every text of the evaluation splits of the tasks (queries and documents of retrieval and
reranking, every text column of the other task types):

- `exact`: the same text after normalisation (Unicode NFKC, casefold, every run of punctuation
  and white space one space), by a 64-bit digest of the normalised text.
- `near`: the Jaccard similarity of the two texts' word `near_ngram`-gram sets, estimated by
  MinHash, is at least `near_threshold`; both texts have at least `near_min_words` words (short
  texts are too alike by chance, exact matching covers them). Candidates come from locality
  sensitive hashing over the signatures' bands, as datasketch's MinHashLSH chooses them.
- `contained`: at least `containment_threshold` of an evaluation text's word
  `containment_ngram`-grams occur in one training text, the test the GPT-3 paper (Brown et
  al. 2020, appendix C: 13-grams) and the Llama 2 paper (section A.6) use for a test passage
  inside a longer document.

MinHash is datasketch's (its permutations and its MurmurHash3 pre-mix, `scheme="affine32"`;
tests compare a signature with datasketch's own `update_batch`) applied to a whole batch of
texts with numpy, and the LSH bands are numpy arrays: datasketch's MinHashLSH keeps every band
of every key as a Python object, gigabytes for the millions of texts of MTEB(eng, v2). Word
n-grams are hashed with a polynomial prefix hash over the bytes of a batch of texts, so no
Python loop runs per word.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from ..config import ConfigError, setting
from ..errors import InputError, first_line
from ..schema import negatives

KINDS = ("exact", "contained", "near")  # a text matching several ways is reported as the first
TEXTS_PER_BATCH = 8192
SHINGLES_PER_BLOCK = 1 << 13  # rows of the (shingles x num_perm) matrix at a time: it stays in cache
MAX_OWNERS = 100  # an n-gram in more evaluation texts than this is boilerplate, not evidence
# datasketch's weights of false positives and false negatives when it splits the signature into
# bands: a missed overlap costs more here than a candidate the signatures then reject. At 0.5 and
# 128 permutations: 30 bands of 4 rows, a pair at Jaccard 0.5 (0.6) a candidate with probability
# 0.86 (0.98), where the even weights' 25 bands of 5 rows give 0.55 (0.87)
LSH_WEIGHTS = (0.2, 0.8)


@dataclass
class DecontaminationSettings:
    near_threshold: float = setting(
        0.5, "a near duplicate: estimated Jaccard similarity of the word n-gram sets at least this")
    near_ngram: int = setting(3, "words per n-gram of the near-duplicate test")
    near_min_words: int = setting(
        10, "texts shorter than this (in words) are tested for exact matches and containment only")
    num_perm: int = setting(128, "MinHash permutations")
    containment_ngram: int = setting(8, "words per n-gram of the containment test")
    containment_threshold: float = setting(
        0.8, "an evaluation text is contained in a training text when this share of its n-grams occurs there")
    fields: list[str] = setting(
        ["query", "positive", "negative"], "the record fields compared (negative: every hard negative)")
    seed: int = setting(1, "seed of the MinHash permutations")

    def check(self) -> None:
        for key in ("near_threshold", "containment_threshold"):
            if not 0 < getattr(self, key) <= 1:
                raise ConfigError(f"'{key}' = {getattr(self, key)} must be in (0, 1]")
        for key in ("near_ngram", "containment_ngram", "near_min_words"):
            if getattr(self, key) < 1:
                raise ConfigError(f"'{key}' = {getattr(self, key)} must be at least 1")
        if self.num_perm < 8:
            raise ConfigError(f"'num_perm' = {self.num_perm} must be at least 8")
        unknown = [f for f in self.fields if f not in ("query", "positive", "negative")]
        if unknown or not self.fields:
            raise ConfigError(f"'fields' = {self.fields}: give some of query, positive, negative")


# --- normalisation and hashing -------------------------------------------------------------

_NOT_WORD = re.compile(r"[\W_]+")


# ASCII text (most of it) takes a byte table: NFKC leaves it as it is and casefold is lower()
_ASCII = bytes(ord(chr(c).lower()) if chr(c).isalnum() else 32 for c in range(128)) + b" " * 128


def normalize(text: str) -> str:
    """NFKC, casefold, every run of punctuation and white space one space, no ends."""
    if text.isascii():
        return " ".join(text.encode("ascii").translate(_ASCII).decode("ascii").split())
    return " ".join(_NOT_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).split())


def digest(norm: str) -> int:
    return int.from_bytes(hashlib.blake2b(norm.encode("utf-8"), digest_size=8).digest(), "little")


_BASE = 0x100000001B3  # odd, so it has an inverse modulo 2^64
_INV_BASE = pow(_BASE, -1, 1 << 64)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix64(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: the polynomial hash's low bits are weak on their own."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


class Words:
    """The words of a batch of normalised texts, with a prefix hash over their bytes from which
    any run of words hashes in O(1): `ngrams(n)` for every n the tests need, one pass."""

    _powers = np.ones(1, np.uint64)   # BASE^i and BASE^-i mod 2^64, grown as batches need
    _inverse = np.ones(1, np.uint64)

    def __init__(self, norm_texts: list[str]):
        self.size = len(norm_texts)
        buf = np.frombuffer(("\n".join(norm_texts) + "\n").encode("utf-8"), dtype=np.uint8)
        sep = (buf == 32) | (buf == 10)
        self.starts = np.flatnonzero(~sep & np.concatenate([[True], sep[:-1]]))
        self.ends = np.flatnonzero(~sep & np.concatenate([sep[1:], [True]])) + 1
        newline = buf == 10
        self.owner = (np.cumsum(newline) - newline)[self.starts]  # text index of each word
        self.words = np.bincount(self.owner, minlength=self.size)
        powers, inverse = self._tables(len(buf))
        self.prefix = np.concatenate([[np.uint64(0)], np.cumsum((buf.astype(np.uint64) + np.uint64(1)) * powers,
                                                                 dtype=np.uint64)])
        self.inverse = inverse

    @classmethod
    def _tables(cls, n: int) -> tuple[np.ndarray, np.ndarray]:
        if len(cls._powers) < n:
            size = max(n, 2 * len(cls._powers))
            for name, base in (("_powers", _BASE), ("_inverse", _INV_BASE)):
                table = np.full(size, np.uint64(base), dtype=np.uint64)
                table[0] = 1
                setattr(cls, name, np.cumprod(table, dtype=np.uint64))
        return cls._powers[:n], cls._inverse[:n]

    def ngrams(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(owner, hash): each word n-gram's text and a 64-bit hash of its bytes, in text order.
        A text with fewer than n words has none."""
        if len(self.starts) < n:
            return np.zeros(0, np.int64), np.zeros(0, np.uint64)
        first, last = self.starts[: len(self.starts) - n + 1], self.ends[n - 1:]
        same = self.owner[: len(self.owner) - n + 1] == self.owner[n - 1:]
        first, last = first[same], last[same]
        hashes = _mix64((self.prefix[last] - self.prefix[first]) * self.inverse[first])
        return self.owner[: len(self.owner) - n + 1][same], hashes


def word_ngrams(norm_texts: list[str], n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(owner, hash, words): `Words(norm_texts).ngrams(n)` and each text's number of words."""
    w = Words(norm_texts)
    return (*w.ngrams(n), w.words)


def _ranges(sorted_keys: np.ndarray, needles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each needle, the range of `sorted_keys` equal to it (empty where absent). The needles
    are looked up in sorted order: a binary search then reads memory in order, several times
    faster than random needles over an array larger than the cache."""
    order = np.argsort(needles)
    lo, hi = np.empty(len(needles), np.int64), np.empty(len(needles), np.int64)
    lo[order] = np.searchsorted(sorted_keys, needles[order], side="left")
    hi[order] = np.searchsorted(sorted_keys, needles[order], side="right")
    return lo, hi


def _unique_per_text(owner: np.ndarray, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each text's distinct n-grams (an n-gram repeated in a text counts once)."""
    with np.errstate(over="ignore"):
        key = _mix64(hashes ^ (owner.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)))
    _, first = np.unique(key, return_index=True)
    first.sort()
    return owner[first], hashes[first]


# --- the evaluation texts ------------------------------------------------------------------

@dataclass
class EvalText:
    task: str
    split: str
    text_id: str
    kind: str  # query, document, or the column of a non-retrieval task's text
    text: str


class EvalDataError(InputError):
    """A task whose evaluation data cannot be loaded."""


def _task_parts(task) -> list:
    return list(getattr(task.metadata, "tasks", None) or [task])


def load_task(task, data_dir: str | None) -> None:
    from ..local_data import use_local_data

    if data_dir:
        use_local_data(task, data_dir)  # checks the files, one line naming a bad one
    try:
        task.load_data()
    except InputError:
        raise
    except Exception as e:  # the Hub offline, a dataset gone: datasets raises many types
        raise EvalDataError(f"{task.metadata.name}: cannot load its evaluation data "
                            f"({first_line(e)}); "
                            "give --data-dir with a local copy (eval.py's layout)") from None


def evaluation_texts(tasks: list, data_dir: str | None = None) -> Iterator[EvalText]:
    """Every text of every evaluation split of `tasks` (an aggregate task's parts each under
    its own name), loaded as eval.py loads them (the Hub, or `data_dir`'s copies)."""
    for top in tasks:
        for task in _task_parts(top):
            load_task(task, data_dir)
            name = task.metadata.name
            for subset, split, data in _splits(task):
                prefix = "" if subset == "default" else f"{subset}/"
                if isinstance(data, dict) and "corpus" in data:
                    for kind, column in (("document", "corpus"), ("query", "queries")):
                        ds = data.get(column)
                        if ds is None:
                            continue
                        for text_id, text in zip(ds["id"], ds["text"]):
                            if isinstance(text, str) and text.strip():
                                yield EvalText(name, split, prefix + str(text_id), kind, text)
                else:
                    for column in data.column_names:
                        for row, value in enumerate(data[column]):
                            values = value if isinstance(value, list) else [value]
                            for j, text in enumerate(values):
                                if isinstance(text, str) and text.strip():
                                    suffix = f".{j}" if isinstance(value, list) else ""
                                    yield EvalText(name, split, f"{prefix}{column}:{row}{suffix}", column, text)


def _splits(task) -> Iterator[tuple[str, str, object]]:
    dataset = task.dataset
    subsets = list(getattr(task, "hf_subsets", None) or ["default"])
    if not task.metadata.is_multilingual and not (isinstance(dataset, dict) and "default" in dataset
                                                  and isinstance(dataset["default"], dict)):
        dataset, subsets = {"default": dataset}, ["default"]
    for subset in subsets:
        for split in task.eval_splits:
            if split in dataset[subset]:
                yield subset, split, dataset[subset][split]


# --- the index -----------------------------------------------------------------------------

@dataclass
class Hit:
    text: int      # index of the training text (in the order given to `match`)
    eval: int      # index of the evaluation text
    kind: str      # exact, contained, near
    score: float   # 1.0, the share of the evaluation text's n-grams found, the estimated Jaccard


class EvalIndex:
    """The evaluation texts, indexed for the three tests; `match` runs them on training texts."""

    def __init__(self, settings: DecontaminationSettings):
        from datasketch import MinHash, MinHashLSH

        self.s = settings
        self.meta: list[EvalText] = []
        # the permutations and the band split are datasketch's, for this threshold and num_perm
        self._perm_a, self._perm_b = MinHash(num_perm=settings.num_perm, seed=settings.seed,
                                             scheme="affine32").permutations
        lsh = MinHashLSH(threshold=settings.near_threshold, num_perm=settings.num_perm, weights=LSH_WEIGHTS)
        self.bands, self.rows = lsh.b, lsh.r
        self._exact: list[np.ndarray] = []
        self._ngram_hash: list[np.ndarray] = []
        self._ngram_owner: list[np.ndarray] = []
        self._sig: list[np.ndarray] = []
        self._sig_owner: list[np.ndarray] = []
        self.ngram_count: np.ndarray | None = None

    # building
    def add(self, texts: Iterable[EvalText]) -> "EvalIndex":
        batch: list[EvalText] = []
        for t in texts:
            batch.append(t)
            if len(batch) == TEXTS_PER_BATCH:
                self._add_batch(batch)
                batch = []
        if batch:
            self._add_batch(batch)
        return self

    def _add_batch(self, batch: list[EvalText]) -> None:
        base = len(self.meta)
        norm = [normalize(t.text) for t in batch]
        keep = [i for i, t in enumerate(norm) if t]
        # the text itself is not kept: millions of evaluation texts would be gigabytes
        self.meta.extend(EvalText(t.task, t.split, t.text_id, t.kind, "") for i, t in enumerate(batch) if norm[i])
        norm = [norm[i] for i in keep]
        ids = np.arange(base, base + len(norm), dtype=np.int64)
        self._exact.append(np.array([[digest(t), i] for t, i in zip(norm, ids)], dtype=np.uint64).reshape(-1, 2))
        words = Words(norm)
        owner, hashes = _unique_per_text(*words.ngrams(self.s.containment_ngram))
        self._ngram_owner.append(owner + base)
        self._ngram_hash.append(hashes)
        sig, sig_rows = self.signatures(words)
        self._sig.append(sig)
        self._sig_owner.append(sig_rows + base)

    def finish(self) -> "EvalIndex":
        n = len(self.meta)
        exact = np.concatenate(self._exact) if self._exact else np.zeros((0, 2), np.uint64)
        order = np.argsort(exact[:, 0], kind="stable")
        self.exact_hash, self.exact_owner = exact[order, 0], exact[order, 1].astype(np.int64)
        hashes = np.concatenate(self._ngram_hash) if self._ngram_hash else np.zeros(0, np.uint64)
        owners = np.concatenate(self._ngram_owner) if self._ngram_owner else np.zeros(0, np.int64)
        self.ngram_count = np.bincount(owners, minlength=n)
        order = np.argsort(hashes, kind="stable")
        hashes, owners = hashes[order], owners[order]
        _, first, counts = np.unique(hashes, return_index=True, return_counts=True)
        common = np.repeat(counts > MAX_OWNERS, counts)
        self.ngram_hash, self.ngram_owner = hashes[~common], owners[~common]
        self.sig = np.concatenate(self._sig) if self._sig else np.zeros((0, self.s.num_perm), np.uint32)
        self.sig_owner = np.concatenate(self._sig_owner) if self._sig_owner else np.zeros(0, np.int64)
        keys = self.band_keys(self.sig)
        self.band_order = np.argsort(keys, axis=0, kind="stable")
        self.band_sorted = np.take_along_axis(keys, self.band_order, axis=0)
        self._exact = self._ngram_hash = self._ngram_owner = self._sig = self._sig_owner = []
        return self

    # MinHash and bands
    def signatures(self, words: "Words | list[str]") -> tuple[np.ndarray, np.ndarray]:
        """(signatures, rows): the MinHash signature (num_perm uint32) of each text with at least
        `near_min_words` words, and which texts those are."""
        from datasketch.minhash import _fmix

        words = words if isinstance(words, Words) else Words(words)
        owner, hashes = words.ngrams(self.s.near_ngram)
        rows = np.flatnonzero(words.words >= max(self.s.near_min_words, self.s.near_ngram))
        if not len(rows):
            return np.zeros((0, self.s.num_perm), np.uint32), rows
        chosen = np.isin(owner, rows)
        owner, hashes = owner[chosen], hashes[chosen]
        h32 = _fmix((hashes & np.uint64(0xFFFFFFFF)).astype(np.uint32), 32)
        sig = np.empty((len(rows), self.s.num_perm), dtype=np.uint32)
        starts = np.searchsorted(owner, rows)
        ends = np.append(starts[1:], len(owner))
        # blocks of whole texts, so each block's matrix stays bounded
        block_start = 0
        while block_start < len(rows):
            block_end = block_start + 1
            limit = starts[block_start] + SHINGLES_PER_BLOCK
            block_end = max(block_end, int(np.searchsorted(ends, limit, side="right")))
            lo, hi = starts[block_start], ends[block_end - 1]
            permuted = np.multiply(h32[lo:hi, None], self._perm_a[None, :])
            permuted += self._perm_b[None, :]
            sig[block_start:block_end] = np.minimum.reduceat(permuted, starts[block_start:block_end] - lo, axis=0)
            block_start = block_end
        return sig, rows

    def band_keys(self, sig: np.ndarray) -> np.ndarray:
        """One 64-bit key per band of each signature (rows: texts, columns: bands)."""
        keys = np.zeros((len(sig), self.bands), dtype=np.uint64)
        with np.errstate(over="ignore"):
            for band in range(self.bands):
                part = sig[:, band * self.rows:(band + 1) * self.rows].astype(np.uint64)
                k = np.full(len(sig), np.uint64(band + 1), dtype=np.uint64)
                for col in range(part.shape[1]):
                    k = _mix64(k * np.uint64(_BASE) + part[:, col])
                keys[:, band] = k
        return keys

    # matching
    def match(self, texts: list[str]) -> list[Hit]:
        """Every hit of the training `texts` (in batches)."""
        hits: list[Hit] = []
        for begin in range(0, len(texts), TEXTS_PER_BATCH):
            hits += self._match_batch(texts[begin:begin + TEXTS_PER_BATCH], begin)
        return hits

    def _match_batch(self, texts: list[str], base: int) -> list[Hit]:
        norm = [normalize(t) for t in texts]
        words = Words(norm)
        hits: list[Hit] = []
        # exact
        if len(self.exact_hash):
            d = np.array([digest(t) if t else 0 for t in norm], dtype=np.uint64)
            lo = np.searchsorted(self.exact_hash, d, side="left")
            hi = np.searchsorted(self.exact_hash, d, side="right")
            for i in np.flatnonzero((hi > lo) & np.array([bool(t) for t in norm])):
                for j in range(lo[i], hi[i]):
                    hits.append(Hit(base + int(i), int(self.exact_owner[j]), "exact", 1.0))
        # contained
        if len(self.ngram_hash):
            owner, hashes = words.ngrams(self.s.containment_ngram)
            if len(hashes):
                owner, hashes = _unique_per_text(owner, hashes)
                lo, hi = _ranges(self.ngram_hash, hashes)
                found = hi > lo
                owner, lo, hi = owner[found], lo[found], hi[found]
                if len(owner):
                    width = hi - lo
                    train = np.repeat(owner, width)
                    offsets = np.arange(width.sum()) - np.repeat(np.cumsum(width) - width, width)
                    ev = self.ngram_owner[np.repeat(lo, width) + offsets]
                    pair, count = np.unique(train.astype(np.uint64) << np.uint64(32) | ev.astype(np.uint64),
                                            return_counts=True)
                    t_idx = (pair >> np.uint64(32)).astype(np.int64)
                    e_idx = (pair & np.uint64(0xFFFFFFFF)).astype(np.int64)
                    share = count / self.ngram_count[e_idx]
                    for t, e, sh in zip(t_idx, e_idx, share):
                        if sh >= self.s.containment_threshold:
                            hits.append(Hit(base + int(t), int(e), "contained", round(float(sh), 4)))
        # near
        if len(self.sig):
            sig, rows = self.signatures(words)
            if len(rows):
                keys = self.band_keys(sig)
                candidates = set()
                for band in range(self.bands):
                    column = self.band_sorted[:, band]
                    lo, hi = _ranges(column, keys[:, band])
                    for r in np.flatnonzero(hi > lo):
                        for j in self.band_order[lo[r]:hi[r], band]:
                            candidates.add((int(r), int(j)))
                if candidates:
                    pairs = np.array(sorted(candidates), dtype=np.int64)
                    jac = (sig[pairs[:, 0]] == self.sig[pairs[:, 1]]).mean(axis=1)
                    for (r, j), jv in zip(pairs, jac):
                        if jv >= self.s.near_threshold:
                            hits.append(Hit(base + int(rows[r]), int(self.sig_owner[j]), "near", round(float(jv), 4)))
        return hits


# --- records -------------------------------------------------------------------------------

def record_texts(records: list[dict], fields: list[str]) -> tuple[list[str], list[tuple[int, str]]]:
    """The texts to compare, and for each its (record index, field)."""
    texts, where = [], []
    for i, rec in enumerate(records):
        for f in fields:
            values = negatives(rec) if f == "negative" else [rec.get(f)]
            for v in values:
                if isinstance(v, str) and v.strip():
                    texts.append(v)
                    where.append((i, f))
    return texts, where


@dataclass
class Outcome:
    kept: list[dict]
    removed: list[dict]
    table: list[dict]   # one row per task
    by_kind: dict[str, int]


def decontaminate(records: list[dict], index: EvalIndex, fields: list[str]) -> Outcome:
    """Split `records` into the clean ones (as they were) and the ones with a hit, each of those
    with its own fields and its strongest hit (`contamination_task`, `_split`, `_text_id`,
    `_kind`, `_field`, `_score`, `_eval_kind`: query or document) and `contamination_hits`."""
    texts, where = record_texts(records, fields)
    hits = index.match(texts)
    rank = {k: i for i, k in enumerate(KINDS)}
    per_record: dict[int, list[tuple[Hit, str]]] = defaultdict(list)
    for h in hits:
        rec, f = where[h.text]
        per_record[rec].append((h, f))
    kept, removed = [], []
    by_kind: Counter = Counter()
    task_records: dict[str, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    task_texts: dict[str, set] = defaultdict(set)
    for i, rec in enumerate(records):
        found = per_record.get(i)
        if not found:
            kept.append(rec)
            continue
        found.sort(key=lambda hf: (rank[hf[0].kind], -hf[0].score, hf[0].eval))
        best, f = found[0]
        ev = index.meta[best.eval]
        by_kind[best.kind] += 1
        removed.append({**rec, "contamination_task": ev.task, "contamination_split": ev.split,
                        "contamination_text_id": ev.text_id, "contamination_eval_kind": ev.kind,
                        "contamination_kind": best.kind, "contamination_field": f,
                        "contamination_score": best.score, "contamination_hits": len(found)})
        best_per_task: dict[str, str] = {}
        for h, _ in found:
            task = index.meta[h.eval].task
            task_texts[task].add(h.eval)
            if task not in best_per_task or rank[h.kind] < rank[best_per_task[task]]:
                best_per_task[task] = h.kind
        for task, kind in best_per_task.items():
            task_records[task][kind].add(i)
    sizes = Counter(t.task for t in index.meta)
    table = []
    for task, n in sizes.items():
        row = {"task": task, "eval_texts": n, "eval_texts_matched": len(task_texts.get(task, ())),
               "records": len(set().union(*task_records[task].values())) if task in task_records else 0}
        for kind in KINDS:
            row[kind] = len(task_records[task][kind]) if task in task_records else 0
        table.append(row)
    return Outcome(kept, removed, table, {k: by_kind.get(k, 0) for k in KINDS})


def table_markdown(table: list[dict]) -> str:
    lines = ["| task | evaluation texts | matched | records | exact | contained | near |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in table:
        lines.append(f"| {r['task']} | {r['eval_texts']} | {r['eval_texts_matched']} | {r['records']} | "
                     f"{r['exact']} | {r['contained']} | {r['near']} |")
    return "\n".join(lines)
