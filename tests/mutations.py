"""Mutation testing of the paper-critical behaviour: one-line mutations, each caught by the tests
it names.

    python tests/mutations.py                    # every mutation; exit 1 if one survives
    python tests/mutations.py --only NAME ...    # some of them
    python tests/mutations.py --list             # the table, without running anything

Each mutation replaces one text, which must occur exactly once in one file, by another: the
recipe done wrong in a way a reader could miss (temperature 1.0 instead of 0.02, the instruction
on documents, a prompt word changed...). For each, the project (the files git tracks or would
track: uncommitted work included, outputs not) is copied to a temporary folder,
the text replaced there, never in the checkout, and the tests the mutation names are run in
the copy (`pytest -x`, under `nice`; the copy's conftest puts the copy first on sys.path, and
PYTHONPATH does the same for the processes the tests start). The mutation is caught when a test
fails (pytest exit 1), survives when they all pass (exit 0, or every test skipped); any other
exit (a test id not found, a collection error, a timeout) is an error of the table, not a catch.
First, the named tests run once on an unmutated copy: a test that already fails there would
"catch" every mutation (`--no-baseline` skips this).

The result is a markdown table (mutation, file, tests run, caught, the test that failed,
seconds). Exit status: 0 all caught, 1 a mutation survived or a run was an error, 2 the table
itself is wrong (a target text not found exactly once, a named test that does not exist).
tests/test_mutations_table.py checks the table in CI; the runs themselves took 16 minutes on 2
shared cores (docs/benchmarks.md, "Mutation testing"), too long for every push.

Adding a mutation is one row in MUTATIONS: name, file, the text, its replacement, the tests.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str  # relative to the project root
    old: str  # must occur exactly once in `file`
    new: str
    tests: str  # pytest node ids (or whole test files), separated by spaces


M = Mutation
WIRING = "tests/test_train_wiring.py::test_first_logged_loss_is_infonce_recomputed_from_the_recipe"
LR = "tests/test_train_wiring.py::test_logged_learning_rate_warms_up_then_decays_linearly_to_zero"
DECAY = "tests/test_train_wiring.py::test_adamw_decays_every_lora_matrix_at_the_recipes_rate"
LOSS = "tests/test_train_loss.py::"
LORA = "tests/test_train_lora.py::"
RESUME = "tests/test_train_run.py::test_killed_run_resumes_to_the_same_final_weights"
ENGINE = "tests/test_synth_engine.py::"
PROMPTS = "tests/test_synth_prompts.py::"
EVAL = "tests/test_eval_protocol.py::"

MUTATIONS = [
    # training: the run's wiring, the loss, the schedule, resume
    M("train-temperature-1", "recipe/train/run.py", "build_loss(model, cfg.temperature,", "build_loss(model, 1.0,", WIRING),
    M("train-no-hard-negatives", "recipe/train/run.py", "self.world, self.cfg.num_negatives)", "self.world, 0)", WIRING),
    M("train-log-not-written", "recipe/train/run.py", 'log_file.write(json.dumps(row) + "\\n")', "pass", WIRING),
    M("train-no-warmup", "recipe/train/run.py", "get_linear_schedule_with_warmup(optimizer, cfg.warmup_steps, total)", "get_linear_schedule_with_warmup(optimizer, 0, total)", LR),
    M("train-lr-times-lora-scale", "recipe/train/run.py", "lr=cfg.learning_rate)", "lr=cfg.learning_rate * cfg.lora_alpha / cfg.lora_r)", LR),
    M("train-pools-mean", "recipe/train/model.py", "pooling_mode=cfg.pooling)", 'pooling_mode="mean")', WIRING),
    M("train-no-instruction", "recipe/train/data.py", 'query=template.format(instruction=instruction, query=rec["query"])', 'query=rec["query"]', "tests/test_train_data.py::test_instruction_goes_on_the_query_side_only"),
    M("train-instruction-on-documents", "recipe/train/data.py", 'positive=rec["positive"],', 'positive=template.format(instruction=instruction, query=rec["positive"]),', "tests/test_train_data.py::test_instruction_goes_on_the_query_side_only"),
    M("step-no-optimizer-step", "recipe/train/step.py", "    optimizer.step()\n", "    pass\n", RESUME),
    M("resume-rng-not-restored", "recipe/train/checkpoint.py", "_set_rng_state(torch.load(rng, weights_only=False))", "torch.load(rng, weights_only=False)", RESUME),
    M("loss-scale-off-by-0.1%", "recipe/train/loss.py", "CachedInfoNCE(model, scale=1.0 / temperature,", "CachedInfoNCE(model, scale=1.0 / (temperature * 1.001),", LOSS + "test_loss_is_infonce_with_the_temperature"),
    M("loss-negatives-not-candidates", "recipe/train/loss.py", "candidates = torch.cat(docs)", "candidates = docs[0]", LOSS + "test_loss_is_infonce_with_the_temperature"),
    M("loss-duplicates-not-masked", "recipe/train/loss.py", "mask |= candidates[None, :] == column[:, None]", "pass", LOSS + "test_duplicates_of_the_positive_are_masked_as_by_hand"),
    M("loss-empty-slot-not-masked", "recipe/train/loss.py", "mask |= (candidates == ABSENT)[None, :]", "pass", LOSS + "test_duplicates_of_the_positive_are_masked_as_by_hand"),
    M("loss-grouped-rows-not-restored", "recipe/train/loss.py", "leaves = [c.detach()[r].requires_grad_() for c, r in zip(columns, restores)]", "leaves = [c.detach().requires_grad_() for c in columns]", "tests/test_train_grouping.py::test_grouping_keeps_loss_accuracy_and_gradients"),
    M("loss-gathered-labels-from-0", "recipe/train/loss.py", "offset, share = sum(sizes[:get_rank()]),", "offset, share = 0,", LOSS + "test_two_gloo_processes_equal_one_process_on_the_concatenated_batch"),
    M("loss-uneven-shares-own-mean", "recipe/train/loss.py", "sum(sizes) / len(sizes)", "local", LOSS + "test_three_processes_on_a_batch_that_does_not_split_evenly_equal_one_process"),
    M("seed-same-on-every-process", "recipe/train/run.py", "set_seed(cfg.seed, device_specific=True)", "set_seed(cfg.seed)", "tests/test_train_processes.py::test_two_processes_share_7_queries_and_draw_their_own_dropout_from_the_same_weights"),
    M("lora-alpha-equals-r", "recipe/train/model.py", "lora_alpha=cfg.lora_alpha", "lora_alpha=cfg.lora_r", LORA + "test_update_is_scaled_by_alpha_over_r_and_its_input_dropped_at_0_1"),
    M("lora-peft-default-targets", "recipe/train/model.py", "target_modules=list(cfg.lora_target_modules)", 'target_modules=["q_proj", "v_proj"]', LORA + "test_rank_16_on_the_seven_projections_of_every_layer"),
    M("lora-no-dropout", "recipe/train/model.py", "lora_dropout=cfg.lora_dropout", "lora_dropout=0.0", LORA + "test_update_is_scaled_by_alpha_over_r_and_its_input_dropped_at_0_1"),
    M("train-no-weight-decay", "recipe/train/run.py", "AdamW(param_groups(model, cfg.weight_decay)", "AdamW(param_groups(model, 0.0)", DECAY),
    M("train-negatives-reversed", "recipe/train/data.py", "negatives=negatives(rec),", "negatives=negatives(rec)[::-1],", "tests/test_train_data.py::test_a_flagembedding_record_brings_its_first_two_of_three_negatives"),
    M("loss-gathered-docs-detached", "recipe/train/loss.py", "docs = [gather_rows(d, sizes) for d in docs]", "docs = [gather_rows(d.detach(), sizes) for d in docs]", LOSS + "test_two_gloo_processes_equal_one_process_on_the_concatenated_batch"),
    M("shard-strided", "recipe/train/data.py", "return batch[rank * n // world:(rank + 1) * n // world]", "return batch[rank::world]", "tests/test_train_data.py::test_homogeneous_batches_by_source_from_build_mix"),
    M("ratio-2-read-once", "recipe/train/data.py", "out.extend(examples * whole +", "out.extend(examples * min(whole, 1) +", "tests/test_train_data.py::test_directory_and_parquet_sources_and_ratios"),
    M("export-merge-not-assigned", "recipe/train/export.py", "transformer.model = transformer.model.merge_and_unload()", "transformer.model.merge_and_unload()", "tests/test_train_run.py::test_export_embeds_exactly_as_the_training_model"),
    M("eos-special-text-not-split", "recipe/eos.py", "tokenizer.split_special_tokens = True", "tokenizer.split_special_tokens = False", "tests/test_train_tokenize.py::test_every_text_ends_in_exactly_one_eos"),
    # synthesis: the paper's prompts, placeholder sets and mixes; dedup; resume
    M("prompt-word-changed", "recipe/synth/prompts/sts_generate.txt", "Be creative!", "Be concise!", PROMPTS + "test_template_is_byte_identical_to_the_paper"),
    M("placeholders-bitext-sts-low-scores", "recipe/synth/placeholders.py", '"low_score": ("1.5", "2", "2.5"),', '"low_score": ("2.5", "3", "3.5"),', PROMPTS + "test_placeholder_sets_are_the_papers"),
    M("placeholders-query-length-5-10", "recipe/synth/placeholders.py", '"5 to 15 words"', '"5 to 10 words"', PROMPTS + "test_placeholder_sets_are_the_papers"),
    M("render-accepts-out-of-set", "recipe/synth/prompts.py", "if allowed is not None and value not in allowed:", "if False:", PROMPTS + "test_render_refuses_out_of_set_values"),
    M("language-mix-english", "recipe/synth/placeholders.py", '"English": 43.1', '"English": 34.1', PROMPTS + "test_93_languages_with_the_papers_mix"),
    M("group-mix-short-long", "recipe/synth/placeholders.py", '"short-long": 167.0', '"short-long": 176.0', PROMPTS + "test_group_mix_is_the_papers_500k"),
    M("bitext-same-language", "recipe/synth/plan.py", "while target == language:", "while False:", "tests/test_synth_plan.py::test_every_value_in_set_and_bitext_languages_differ"),
    M("teacher-temperature", "recipe/synth/request.py", '"temperature": cfg.temperature,', '"temperature": 0.7,', ENGINE + "test_end_to_end_exact_count_fields_and_paper_settings"),
    M("long-short-label-swapped", "recipe/synth/parse.py", '"long-short": ("input_text", "label", "misleading_label"),', '"long-short": ("input_text", "misleading_label", "label"),', "tests/test_synth_parse.py::test_each_group_becomes_the_papers_triple"),
    M("synth-model-mix", "recipe/configs/synth_e5.yaml", "gpt-4-turbo: 0.75", "gpt-4-turbo: 0.5", "tests/test_synth_plan.py::test_shipped_recipe_plans_the_papers_teachers_groups_and_languages"),
    M("brainstorm-for-sts", "recipe/synth/placeholders.py", 'BRAINSTORM_GROUPS = ("short-long", "long-short", "short-short", "long-long")', 'BRAINSTORM_GROUPS = ("short-long", "long-short", "short-short", "long-long", "sts")', PROMPTS + "test_brainstorm_only_for_asymmetric_groups"),
    M("dedup-off", "recipe/synth/save.py", "if key in store.keys:", "if False:", ENGINE + "test_faults_are_filtered_counted_and_never_exceed_n"),
    M("dedup-keys-not-rebuilt-on-reopen", "recipe/synth/store.py", '            self.keys.add(example_key(rec["query"], rec["positive"], rec["negative"]))\n            self.n_examples += 1', "            self.n_examples += 1", ENGINE + "test_duplicate_of_an_answer_saved_before_a_restart_is_rejected"),
    M("online-resume-asks-again", "recipe/synth/engine.py", "if j.index not in store.done_jobs", "if True", ENGINE + "test_rerun_resumes_without_asking_again"),
    M("batch-resume-asks-saved-jobs", "recipe/synth/batch.py", "if job.index in store.done_jobs or job.index in pending:", "if job.index in pending:", "tests/test_synth_batch.py::test_resumed_batch_run_never_asks_again_for_a_saved_job"),
    M("batch-finish-reason-ignored", "recipe/synth/request.py", 'choice.get("finish_reason"),', '"stop",', "tests/test_synth_batch.py::test_batch_mode_filters_faulty_answers_with_their_reasons"),
    # data: public sets, mining
    M("public-hotpotqa-columns-swapped", "recipe/data/public.py", 'configs=("triplet",),\n                 columns=("anchor", "positive", "negative"),\n                 instruction="Given a multi-hop', 'configs=("triplet",),\n                 columns=("anchor", "negative", "positive"),\n                 instruction="Given a multi-hop', "tests/test_data_public.py::test_loader_maps_the_real_schema_to_records[hotpotqa]"),
    M("public-eli5-ratio", "recipe/data/public.py", "from_columns, ratio=0.1, configs=(\"pair\",)", "from_columns, ratio=1.0, configs=(\"pair\",)", "tests/test_data_public.py::test_registry_covers_the_papers_13_sets_with_table_14_and_ratios"),
    M("mining-one-positive-per-query", "recipe/data/mining.py", "pairs = list(dict.fromkeys((anchors[i], records[i][\"positive\"]) for i in idx if anchors[i] in wanted))", "pairs = list({anchors[i]: (anchors[i], records[i][\"positive\"]) for i in idx if anchors[i] in wanted}.values())", "tests/test_data_mining.py::test_cli_mined_negatives_are_never_labelled_positives"),
    # evaluation: the e5 protocol
    M("eval-query-template", "recipe/schema.py", 'QUERY_PREFIX = "Instruct: {instruction}\\nQuery: "', 'QUERY_PREFIX = "Instruct: {instruction}\\nquery: "', "tests/test_eval_report.py::test_shipped_recipe_is_the_papers_protocol"),
    M("eval-retrieval-documents-instructed", "recipe/eval/encoder.py", 'BARE_DOCUMENT_TYPES = {"Retrieval"}', "BARE_DOCUMENT_TYPES = set()", EVAL + "test_queries_get_the_instruction_documents_do_not_and_every_input_ends_with_eos"),
    M("eval-every-document-bare", "recipe/eval/encoder.py", "if prompt_type == PromptType.document and task_metadata.type in BARE_DOCUMENT_TYPES:", "if prompt_type == PromptType.document:", "tests/test_eval_task_types.py::test_each_task_type_puts_the_instruction_where_its_protocol_says"),
    M("eval-classification-normalised", "recipe/eval/encoder.py", 'kwargs["normalize_embeddings"] = task_metadata.type not in UNNORMALISED_TYPES', 'kwargs["normalize_embeddings"] = True', EVAL + "test_paper_protocol_normalises_except_for_classification"),
    M("eval-cqadupstack-instruction", "recipe/eval/encoder.py", "that are duplicates to the given question", "that are similar to the given question", "tests/test_eval_task_types.py::test_every_task_of_both_english_benchmarks_gets_a_paper_instruction"),
    M("eval-bf16-on-gpu", "recipe/eval/model.py", 'return torch.float16 if device.startswith("cuda")', 'return torch.bfloat16 if device.startswith("cuda")', EVAL + "test_default_precision_is_fp16_on_a_gpu_as_the_authors_ran_it"),
    M("export-document-prompt", "recipe/train/export.py", '{"query": prompt, "document": ""}', '{"query": prompt, "document": prompt}', "tests/test_train_run.py::test_export_embeds_exactly_as_the_training_model"),
    M("eval-no-eos", "recipe/eval/model.py", 'if pooling_mode(model) == "lasttoken":', "if False:", EVAL + "test_queries_get_the_instruction_documents_do_not_and_every_input_ends_with_eos"),
    # beyond the paper: the quality lab's keys and the pair filter
    M("margin-in-cosine-on-scaled-scores", "recipe/train/loss.py", "None if margin is None else margin * scale", "margin", LOSS + "test_false_negative_margin_masks_as_by_hand"),
    M("margin-masks-below-the-positive", "recipe/train/loss.py", "mask |= scores.detach() > own + margin", "mask |= scores.detach() > own - margin", LOSS + "test_false_negative_margin_masks_as_by_hand"),
    M("matryoshka-cut-not-renormalised", "recipe/train/loss.py", "scores = cos_sim(queries[begin:end, :dim], candidates[:, :dim]) * scale", "scores = queries[begin:end, :dim] @ candidates[:, :dim].T * scale", LOSS + "test_matryoshka_loss_is_the_sum_over_cut_embeddings_as_sentence_transformers_computes_it"),
    M("merge-keeps-the-last-checkpoint", "recipe/train/merge.py", "return torch.stack([t.double() for t in tensors]).mean(0).to(tensors[0].dtype)", "return tensors[-1]", "tests/test_train_merge_matryoshka.py::test_merging_two_full_checkpoints_gives_their_average"),
    M("merge-lora-b-kept", "recipe/train/merge.py", "params[b_name].zero_()", "pass", "tests/test_train_merge_matryoshka.py::test_merging_two_lora_checkpoints_gives_the_average_of_their_models"),
    M("filter-top-k-off-by-one", "recipe/data/filtering.py", "if settings.top_k and rank > settings.top_k:", "if settings.top_k and rank >= settings.top_k:", "tests/test_data_filter.py"),
    M("hub-push-skips-write-check", "recipe/hub.py", "api = HfApi(token=check_write(repo_id, target, token))", "api = HfApi(token=token)", "tests/test_hub.py::test_push_without_write_access_refuses_before_any_work"),
    M("output-dir-digest-ignored", "recipe/files.py", "elif not path.is_file() or _sha256(path) != listed[rel]:", "elif not path.is_file():", "tests/test_output_folders.py::test_a_folder_is_usable_when_absent_empty_or_the_tools_and_what_it_replaces_is_vouched_for"),
    M("output-dir-foreign-folder-taken", "recipe/files.py", "            if present:", "            if False:", "tests/test_output_folders.py::test_a_benchmark_refuses_a_folder_it_did_not_make_through_the_one_rule"),
    M("publish-checks-write-after-building", "recipe/commands/publish.py", "token = None if cfg.dry_run else check_write(cfg.repo_id, DATASET)", "token = None", "tests/test_hub.py::test_publish_refuses_a_read_only_token_before_reading_the_input"),
    M("hub-id-under-a-local-folder", "recipe/hub.py", 'if Path(text.split("/")[0]).is_dir():', "if False:", "tests/test_hub.py::test_a_name_on_disk_or_under_a_local_folder_is_not_a_hub_id"),
]


class TableError(Exception):
    """The table itself is wrong: the script exits 2 before running anything."""


def test_ids(m: Mutation) -> list[str]:
    return m.tests.split()


def _test_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def problems(root: Path, mutations: list[Mutation] = MUTATIONS) -> list[str]:
    """What is wrong with the table against the project at `root` (empty: nothing)."""
    found = []
    names = [m.name for m in mutations]
    found += [f"{n}: name used twice" for n in sorted({n for n in names if names.count(n) > 1})]
    for m in mutations:
        path = root / m.file
        if not path.is_file():
            found.append(f"{m.name}: no file {m.file}")
        else:
            count = path.read_text(encoding="utf-8").count(m.old)
            if count != 1:
                found.append(f"{m.name}: its target text occurs {count} times in {m.file}, not once")
        if m.old == m.new:
            found.append(f"{m.name}: the replacement is the target text")
        if not test_ids(m):
            found.append(f"{m.name}: names no test")
        for node in test_ids(m):
            file, _, func = node.partition("::")
            func = func.split("[")[0]
            if not (root / file).is_file():
                found.append(f"{m.name}: no test file {file}")
            elif "::" in node and func not in _test_functions(root / file):
                found.append(f"{m.name}: no test {func!r} in {file}")
    return found


def apply(root: Path, m: Mutation) -> None:
    """Replace the target text in the copy at `root`; loud if it is not there exactly once."""
    path = root / m.file
    text = path.read_text(encoding="utf-8")
    if text.count(m.old) != 1:
        raise TableError(f"{m.name}: its target text occurs {text.count(m.old)} times in {m.file}, not once")
    path.write_text(text.replace(m.old, m.new), encoding="utf-8")


def copy_project(dest: Path) -> Path:
    """The files git tracks or would track (not ignored), as they are in the working tree."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():  # a tracked file deleted in the working tree stays deleted
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


@dataclass
class Outcome:
    rc: int  # pytest's exit status; -1: timed out
    seconds: float
    failed: list[str]  # node ids pytest reported as failed
    tail: str


def run_tests(root: Path, tests: list[str], timeout: float) -> Outcome:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join(
        [str(root)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    nice = ["nice", "-n", "10"] if shutil.which("nice") else []
    cmd = nice + [sys.executable, "-m", "pytest", "-x", "-q", "-rf", "-p", "no:cacheprovider", *tests]
    start = time.monotonic()
    try:
        done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        return Outcome(-1, time.monotonic() - start, [], out[-3000:])
    failed = re.findall(r"^FAILED (.+?)(?: - .*)?$", done.stdout, flags=re.M)
    return Outcome(done.returncode, time.monotonic() - start, failed, (done.stdout + done.stderr)[-3000:])


def verdict(outcome: Outcome) -> str:
    return {1: "yes", 0: "NO"}.get(outcome.rc, "error" if outcome.rc != -1 else "timeout")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run these mutations only")
    parser.add_argument("--list", action="store_true", help="print the table and exit")
    parser.add_argument("--no-baseline", action="store_true", help="skip the run of the tests on unmutated code")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per mutation (default 900)")
    args = parser.parse_args(argv)

    wrong = problems(ROOT)
    if wrong:
        print("the mutation table is wrong:\n  " + "\n  ".join(wrong), file=sys.stderr)
        return 2
    chosen = MUTATIONS
    if args.only:
        unknown = sorted(set(args.only) - {m.name for m in MUTATIONS})
        if unknown:
            print(f"unknown mutation(s) {', '.join(unknown)}; --list shows them", file=sys.stderr)
            return 2
        chosen = [m for m in MUTATIONS if m.name in args.only]
    if args.list:
        print("| mutation | file | tests |\n|---|---|---|")
        for m in chosen:
            print(f"| {m.name} | {m.file} | {', '.join(t.split('::')[-1] for t in test_ids(m))} |")
        return 0

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="e5-mutations-") as tmp:
        if not args.no_baseline:
            tests = list(dict.fromkeys(t for m in chosen for t in test_ids(m)))
            base = run_tests(copy_project(Path(tmp) / "baseline" / ROOT.name), tests, args.timeout * 2)
            print(f"baseline: {len(tests)} tests on unmutated code, exit {base.rc}, {base.seconds:.0f} s", flush=True)
            if base.rc != 0:
                print(base.tail, file=sys.stderr)
                print("the named tests fail (or were not run) without any mutation: fix that first", file=sys.stderr)
                return 1
        print("| mutation | file | tests run | caught | failed test | s |\n|---|---|---|---|---|---:|", flush=True)
        bad = []
        for i, m in enumerate(chosen):
            root = copy_project(Path(tmp) / f"m{i}" / ROOT.name)
            apply(root, m)
            outcome = run_tests(root, test_ids(m), args.timeout)
            shutil.rmtree(root.parent, ignore_errors=True)
            caught = verdict(outcome)
            ran = ", ".join(t.split("::")[-1] for t in test_ids(m))
            first = outcome.failed[0].split("::")[-1] if outcome.failed else "-"
            print(f"| {m.name} | {m.file} | {ran} | {caught} | {first} | {outcome.seconds:.0f} |", flush=True)
            if caught != "yes":
                bad.append(m.name)
                print(outcome.tail, file=sys.stderr, flush=True)
    print(f"\n{len(chosen) - len(bad)} of {len(chosen)} mutations caught in {time.monotonic() - started:.0f} s"
          + (f"; not caught: {', '.join(bad)}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
