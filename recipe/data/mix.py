"""A training data mix: public sets and synthetic data, each with a sample ratio, as records.

The recipe (`recipe/configs/data_full.yaml`) lists sources:
    - public: eli5                 # a registry name (recipe.data.public); ratio defaults to the paper's
    - records: out/synth           # anything read_records reads: folder, .jsonl/.parquet, Hub id
      config: all                  # published dataset config (optional), split (default train)
      name: synthetic              # value of `source` in the records (default: the path or id)
      ratio: 1.0                   # optional, in (0, 1]
      columns: {query: question, positive: answer}   # optional: other column names (see recipe/data/records.py)
      instruction: Given a question, retrieve ...     # optional: for records without one
Every record gets `source`, so mining builds one corpus per source and training can report per
source. The paper's "full data" setting is 13 public sets plus the synthetic data (~1.8M examples).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from . import public
from ..config import ConfigError, setting
from ..errors import InputError
from ..sources import check_local_or_hub
from .records import MAPPABLE, read_records

KEYS = {"public", "records", "config", "split", "name", "ratio", "columns", "instruction"}


class MixError(InputError):
    """A mix recipe that cannot be built; the message names the source and the key."""


@dataclass
class MixConfig:
    sources: list[dict] = setting(
        [], "list of {public: NAME} or {records: PATH_OR_HUB_ID, config, split, name, columns, instruction}, each "
        "with optional ratio")
    seed: int = setting(0, "seed of the ratio sampling")
    output: str = setting("", "output .jsonl of the mixed records")
    overwrite: bool = setting(False, "replace an existing --output")

    def check(self) -> None:
        if not self.output:
            raise ConfigError("command line: --output is required")
        check_sources(self.sources)


def check_sources(sources: list) -> list[dict]:
    """The sources, checked: one error naming the source's position and the bad key or value."""
    if not sources:
        raise MixError("sources: the mix lists no sources")
    for i, src in enumerate(sources, 1):
        where = f"sources[{i}]"
        if not isinstance(src, dict):
            raise MixError(f"{where}: want a mapping such as {{public: eli5}}, got {src!r}")
        unknown = set(src) - KEYS
        if unknown:
            raise MixError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(KEYS))})")
        if ("public" in src) == ("records" in src):
            raise MixError(f"{where}: give exactly one of 'public' (a registry name) or 'records' (a path or Hub id)")
        if "public" in src and src["public"] not in public.SOURCES:
            raise MixError(f"{where}: unknown public dataset {src['public']!r}; known: {', '.join(public.SOURCES)}")
        ratio = src.get("ratio", 1.0)
        if not isinstance(ratio, (int, float)) or isinstance(ratio, bool) or not 0 < ratio <= 1:
            raise MixError(f"{where}: ratio must be a number in (0, 1], got {ratio!r}")
        columns = src.get("columns", {})
        if not isinstance(columns, dict) or set(columns) - set(MAPPABLE):
            raise MixError(f"{where}: columns must map fields ({', '.join(MAPPABLE)}) to column names, got {columns!r}")
    return sources


def local_inputs(cfg: MixConfig) -> list[str]:
    """The files and folders on this machine that the mix reads (its output must not be one);
    a source that names a local path that does not exist is an error here, before any reading."""
    paths = []
    for i, src in enumerate(check_sources(cfg.sources), 1):
        if "records" in src:
            check_local_or_hub(str(src["records"]), f"sources[{i}] records:", "data")
            if Path(str(src["records"])).exists():
                paths.append(str(src["records"]))
    return paths


def iter_mix(cfg: MixConfig, fetch=public.hub_fetch) -> Iterator[dict]:
    """The mix's records, source after source (training shuffles)."""
    for src in check_sources(cfg.sources):
        if "public" in src:
            yield from public.load(src["public"], ratio=src.get("ratio"), seed=cfg.seed, fetch=fetch)
            continue
        name = src.get("name") or str(src["records"])
        ratio = src.get("ratio", 1.0)
        default = src.get("instruction")
        for i, rec in enumerate(read_records(src["records"], src.get("config"), src.get("split", "train"),
                                             src.get("columns"))):
            if public.in_sample(f"{name}:{rec.get('id', i)}", ratio, cfg.seed):
                yield {**rec, "instruction": rec.get("instruction") or default, "source": name}
