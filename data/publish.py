"""Publish a synthesis output folder to the Hugging Face Hub, with a dataset card.

    python data/publish.py out/run1 --repo-id ORG/NAME [--private]
    python data/publish.py out/run1 --repo-id ORG/NAME --dry-run out/run1-hub   # write locally only

One config per task group plus `all`; the card records the teachers, prompts, sampling, seed,
counts per group and language, tokens and cost, the licence and the teacher's terms. Needs a Hub
token (HF_TOKEN or `hf auth login`) unless --dry-run. Credentials never reach the card or the logs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's `recipe`, not an installed one

from recipe.data import hub  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", help="synthesis output folder (examples.jsonl, runs.jsonl, tasks.jsonl, rejected.jsonl)")
    p.add_argument("--repo-id", required=True, help="Hub dataset id, NAMESPACE/NAME")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--dry-run", metavar="DIR2", help="write what would be pushed to DIR2 and push nothing")
    p.add_argument("--license", default="other", help="licence id for the card (default: other)")
    p.add_argument("--terms", help="extra text for the card's terms-of-use section")
    p.add_argument("--shard-rows", type=int, default=100_000, help="rows per parquet shard")
    args = p.parse_args(argv)
    import datasets

    datasets.disable_progress_bars()  # one bar per shard is noise; the summary line says what happened
    try:
        hub.check_repo_id(args.repo_id)
        token = None if args.dry_run else hub.hub_token()
        out = hub.load_output_dir(args.dir)
        if args.dry_run:
            files = hub.build(out, args.repo_id, args.dry_run, license=args.license,
                              extra_terms=args.terms, shard_rows=args.shard_rows)
            print(f"dry run: {len(out.examples)} examples, {len(files)} files written to {args.dry_run}; nothing pushed")
            return 0
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "dataset"
            files = hub.build(out, args.repo_id, folder, license=args.license, extra_terms=args.terms,
                              shard_rows=args.shard_rows, token=token)
            url = hub.push(folder, args.repo_id, token, private=args.private)
        print(f"pushed {len(out.examples)} examples ({len(files)} files) to https://huggingface.co/datasets/{args.repo_id}: {url}")
        return 0
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
