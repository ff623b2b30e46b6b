"""A leaderboard submission: the folder the MTEB results repository takes, and the ModelMeta for mteb.

    OUTPUT/submission/results/<org>__<name>/<revision>/<Task>.json    this run's result files
                                                  model_meta.json        the ModelMeta, as mteb writes it
                                                  run_settings.jsonl     per task and split: versions, encode settings
    OUTPUT/submission/model_meta.py                                      the ModelMeta to add to mteb

mteb's ResultCache already writes result files, a model_meta.json and run_settings.jsonl (mteb,
torch, transformers versions per task), but under `experiments/<settings>/`, where our protocol
settings put them, and with a ModelMeta that knows only what the encoder knows. The results
repository wants them in the revision folder itself with a ModelMeta that names the sizes,
licence, release date, base model and training data: counted from the loaded model and read
from train.py's `training_info.json` (recipe/train/export.py). The two pull requests stay manual
(README, Evaluate).
"""

from __future__ import annotations

import json
import shutil
from enum import Enum
from pathlib import Path

from mteb.models.instruct_wrapper import InstructSentenceTransformerModel
from mteb.models.model_meta import ModelMeta
from mteb.models.sentence_transformer_wrapper import SentenceTransformerEncoderWrapper

from ..data.public import SOURCES as PUBLIC_SETS
from ..files import atomic_dir, jsonl
from ..hub import is_hub_id
from ..schema import TRAINING_INFO
from .protocol import registry_meta

# mteb tasks built from the training splits (or the very data) of the paper's public sets
# (recipe/data/public.py registry names), for ModelMeta.training_datasets: the leaderboard marks
# a model as not zero-shot on these
TRAINED_ON = {
    "msmarco-passage": ["MSMARCO", "MSMARCOHardNegatives", "NanoMSMARCORetrieval"],
    "msmarco-document": ["MSMARCO", "MSMARCOHardNegatives", "NanoMSMARCORetrieval"],
    "nq": ["NQ", "NQHardNegatives", "NanoNQRetrieval"],
    "hotpotqa": ["HotpotQA", "HotpotQAHardNegatives", "NanoHotpotQARetrieval"],
    "fever": ["FEVER", "FEVERHardNegatives", "NanoFEVERRetrieval"],
    "miracl": ["MIRACLRetrieval", "MIRACLRetrievalHardNegatives", "MIRACLReranking"],
    "mrtydi": ["MrTidyRetrieval"],
    "quora": ["QuoraRetrieval", "QuoraRetrievalHardNegatives", "NanoQuoraRetrieval"],
    "squad": ["XQuADRetrieval"],
    "dureader": ["DuRetrieval"],
    "t2ranking": ["T2Retrieval", "T2Reranking"],
}
# mteb's reference implementations: an E5-style instruction model's (as e5-mistral-7b-instruct's
# ModelMeta names it), or a SentenceTransformer run as saved
LOADERS = {True: InstructSentenceTransformerModel, False: SentenceTransformerEncoderWrapper}


def training_info(model_path: str, revision: str | None = None) -> dict:
    """train.py's training_info.json: of a local folder, or of a pushed model at `revision` (from
    the Hub, or the local Hub cache offline); {} for another model."""
    path = Path(model_path) / TRAINING_INFO
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    if not is_hub_id(model_path):
        return {}
    from huggingface_hub import hf_hub_download

    try:
        hub_revision = revision if revision and not revision.startswith("local-") else None
        downloaded = hf_hub_download(model_path, TRAINING_INFO, revision=hub_revision)
    except Exception:  # not ours (no such file), offline and not cached: a model trained elsewhere
        return {}
    return json.loads(Path(downloaded).read_text(encoding="utf-8"))


def trained_on(info: dict) -> set[str] | None:
    """ModelMeta.training_datasets from training_info.json: the mteb tasks built from the public
    sets trained on (their train splits; mteb's names for the tasks whose test splits share the
    source), each other data source as its own entry (the Hub id it was published under, else its
    name: the synthetic data), and the tasks whose evaluation texts data/decontaminate.py found in
    data that was trained on as it was (a --report-only report; data it cleaned adds none)."""
    if not info:
        return None
    sources = info.get("training_data", [])
    names = {task for source in sources for task in TRAINED_ON.get(source["name"], [])}
    # a source without a name of its own is named by its path: its file or folder name, not
    # where it lay on the training machine
    names |= {source.get("hub_id") or Path(source["name"]).name.removesuffix(".jsonl").removesuffix(".parquet")
              for source in sources if source["name"] not in PUBLIC_SETS}
    for report in info.get("decontamination", []):
        if report.get("overlaps_kept"):
            names |= set(report.get("overlapping_tasks", []))
    return names


def submission_meta(encoder, model_path: str) -> ModelMeta:
    """The ModelMeta of the model `encoder` evaluated, with what mteb's leaderboard asks for."""
    meta = encoder.mteb_model_meta
    info = training_info(model_path, meta.revision)
    name = info.get("hub_model_id") or meta.name
    known = registry_meta(name)
    if known is not None:  # mteb describes it already: only the revision is ours to say
        return known.model_copy(update={"revision": meta.revision, "experiment_kwargs": None})
    model = encoder.model
    base = info.get("base_model")
    sources = info.get("training_data", [])
    # the project's own published data (a public set's Hub copy is not "public training data" of ours)
    hub_data = [s["hub_id"] for s in sources if s.get("hub_id") and s["name"] not in PUBLIC_SETS]
    e5 = encoder.protocol == "e5"
    built = ModelMeta(
        loader=LOADERS[e5],
        loader_kwargs={"instruction_template": encoder.instruction_template,
                       "apply_instruction_to_passages": False} if e5 else {},
        name=name, revision=meta.revision, release_date=info.get("exported"), languages=None,
        n_parameters=info.get("n_parameters") or sum(p.numel() for p in model.parameters()),
        n_embedding_parameters=info.get("n_embedding_parameters"),
        memory_usage_mb=None,
        max_tokens=info.get("max_tokens") or model.max_seq_length,
        embed_dim=model.get_embedding_dimension(),
        license=info.get("license"), open_weights=True,
        public_training_code=None,
        public_training_data=f"https://huggingface.co/datasets/{hub_data[0]}" if hub_data else None,
        framework=["Sentence Transformers", "PyTorch"],
        reference=None if name.startswith("local/") else f"https://huggingface.co/{name}",
        similarity_fn_name=meta.similarity_fn_name, use_instructions=e5,
        training_datasets=trained_on(info),
        adapted_from=base if base and is_hub_id(base) else None,
    )
    return built.model_copy(update={"memory_usage_mb": built.calculate_memory_usage_mb()})


def write_submission(out: Path, meta: ModelMeta, results: dict[str, Path], known: bool = False,
                     decontamination: list[dict] | None = None) -> Path:
    """Write OUTPUT/submission/ (replaced whole: it is derived from OUTPUT's results; the caller
    has checked that what is there is an earlier run's) and return it.

    `results`: each finished task's result file as mteb's ResultCache filed it (sub-tasks of an
    aggregate, CQADupstackRetrieval's forums, included); the run settings mteb wrote beside each.
    model_meta.py is left out where mteb has the model's ModelMeta already (`known`)."""
    target = out / "submission"
    with atomic_dir(target, overwrite=True) as tmp:
        folder = tmp / "results" / meta.model_name_as_path() / meta.revision
        folder.mkdir(parents=True)
        for name, path in results.items():
            shutil.copy2(path, folder / f"{name}.json")
        (folder / "model_meta.json").write_text(json.dumps(meta_dict(meta), default=str, indent=4), encoding="utf-8")
        settings = [s for run_settings in sorted({p.parent / "run_settings.jsonl" for p in results.values()})
                    if run_settings.is_file()
                    for _, s in jsonl(run_settings) if s.get("task") in results]
        (folder / "run_settings.jsonl").write_text("".join(json.dumps(s) + "\n" for s in settings),
                                                   encoding="utf-8")
        if not known:
            (tmp / "model_meta.py").write_text(model_meta_source(meta, decontamination), encoding="utf-8")
    return target


def meta_dict(meta) -> dict:
    """ModelMeta.to_dict with its sets as sorted lists: to_dict lists a set in hash order, which
    differs between two equal sets built in another order, and a file should not."""
    return {k: sorted(v) if isinstance(v, (set, frozenset)) or k == "training_datasets" and isinstance(v, list) else v
            for k, v in meta.to_dict().items()}


def _py(value) -> str:
    if isinstance(value, set):
        return "{" + ", ".join(repr(v) for v in sorted(value)) + "}" if value else "set()"
    if isinstance(value, Enum):  # ScoringFunction: its plain value, which ModelMeta reads back
        return repr(value.value)
    return repr(value)


def decontamination_lines(reports: list[dict] | None) -> list[str]:
    """What data/decontaminate.py found in the training data, as comments for the pull request
    (ModelMeta has no field for it; training_datasets names the tasks whose overlaps stayed)."""
    lines = []
    for r in reports or []:
        if "unreadable" in r:
            lines.append(f"# decontamination report {r['report']}: unreadable ({r['unreadable']})")
            continue
        k = r["by_kind"]
        how = "kept in the training data (listed in training_datasets)" if r["overlaps_kept"] else "removed before training"
        lines.append(f"# decontamination of {r['data']} against {r['benchmark'] or 'tasks'} ({len(r['tasks'])} tasks, "
                     f"{r['evaluation_texts']} evaluation texts, {r['date']}): {r['removed']} of {r['records']} records "
                     f"overlap ({k['exact']} exact, {k['contained']} contained, {k['near']} near), {how}; "
                     f"tasks: {', '.join(r['overlapping_tasks']) or 'none'}")
    return lines


def model_meta_source(meta: ModelMeta, decontamination: list[dict] | None = None) -> str:
    """Python for mteb/models/model_implementations/: the ModelMeta, field by field."""
    loader = LOADERS[bool(meta.use_instructions)]
    fields = meta.to_dict()
    skip = {"loader", "is_cross_encoder", "experiment_kwargs"}
    lines = ['"""ModelMeta for mteb (mteb/models/model_implementations/): written by e5-recipe\'s',
             "eval.py --submission. Check every field; fill what is None and should not be",
             '(public_training_code: the link to your training code; languages: ISO codes such as "eng-Latn")."""',
             "", f"from {loader.__module__} import {loader.__name__}",
             "from mteb.models.model_meta import ModelMeta", "", *decontamination_lines(decontamination),
             f"{meta.model_name_as_path().replace('-', '_').replace('.', '_').lower()} = ModelMeta(",
             f"    loader={loader.__name__},"]
    for key, value in fields.items():
        if key in skip:
            continue
        if key == "training_datasets" and value is not None:
            value = set(value)
        lines.append(f"    {key}={_py(value)},")
    lines.append(")")
    return "\n".join(lines) + "\n"
