"""Publish a synthesis output folder to the Hugging Face Hub, with a dataset card.

    python data/publish.py --input out/run1 --repo-id ORG/NAME [--private]
    python data/publish.py --input out/run1 --repo-id ORG/NAME --dry-run --output-dir out/run1-hub   # write locally only

One config per task group plus `all`; the card records the teachers, prompts, sampling, seed,
counts per group and language, tokens and cost, the licence and the teacher's terms. Needs a Hub
token (HF_TOKEN or `hf auth login`) that may write under the repo's namespace unless --dry-run,
checked before anything is built. Credentials never reach the card or the logs.
--dry-run writes only into a new or empty folder, or replaces an earlier dry run's (which it
knows by the file .e5-output.json listing what that run wrote, with each file's digest); never a
folder with anything else: another file, a subfolder (even an empty one), a card edited since.
Exit codes: 0 done, 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from recipe import cli, log
from recipe.config import ConfigError, parse, setting
from recipe.data import hub
from recipe.files import check_output_dir
from recipe.hub import DATASET, check_hub_id, check_write

# the tool a dry run's folder names as its maker: only such a folder is ever replaced
DRY_RUN = "publish --dry-run"


@dataclass
class PublishConfig:
    input: str = setting("", "synthesis output folder (examples.jsonl, runs.jsonl, ...)")
    repo_id: str = setting("", "Hub dataset id, NAMESPACE/NAME")
    private: bool = setting(False, "create the repo private")
    dry_run: bool = setting(False, "write what would be pushed to --output-dir, push nothing")
    output_dir: str = setting(
        "", "--dry-run: the folder to write (new, empty, or an earlier dry run's, which is replaced)")
    license: str = setting("other", "licence id for the card")
    terms: str | None = setting(None, "extra text for the card's terms-of-use section")
    shard_rows: int = setting(100_000, "rows per parquet shard")

    def check(self) -> None:
        if not self.input:
            raise ConfigError("command line: --input is required (a synthesis output folder)")
        if not self.repo_id:
            raise ConfigError("command line: --repo-id is required (NAMESPACE/NAME)")
        if self.dry_run and not self.output_dir:
            raise ConfigError("command line: --dry-run needs --output-dir (the folder to write)")
        if self.shard_rows < 1:
            raise ConfigError(f"'shard_rows' = {self.shard_rows} must be at least 1")
        check_hub_id(self.repo_id, DATASET.flag)


def _main(argv: list[str]) -> int:
    cfg = parse(PublishConfig, argv)
    if cfg.dry_run:
        check_output_dir(cfg.output_dir, DRY_RUN, inputs=[cfg.input])
    token = None if cfg.dry_run else check_write(cfg.repo_id, DATASET)  # before any work
    out = hub.load_output_dir(cfg.input)
    import datasets

    datasets.disable_progress_bars()  # one bar per shard is noise; the summary line says what happened
    if cfg.dry_run:
        files = hub.build(out, cfg.repo_id, cfg.output_dir, license=cfg.license,
                          extra_terms=cfg.terms, shard_rows=cfg.shard_rows, marked_by=DRY_RUN)
        log.result(f"dry run: {len(out.examples)} examples, {len(files)} files written to {cfg.output_dir}; nothing pushed")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "dataset"
        files = hub.build(out, cfg.repo_id, folder, license=cfg.license, extra_terms=cfg.terms,
                          shard_rows=cfg.shard_rows, token=token)
        url = hub.push(folder, cfg.repo_id, token, private=cfg.private)
    log.result(f"pushed {len(out.examples)} examples ({len(files)} files) to "
               f"https://huggingface.co/datasets/{cfg.repo_id}: {url}")
    return 0


main = cli.command(_main, doc=__doc__, config=PublishConfig, module=__name__)
