"""Write OUTPUT/final/: a folder `SentenceTransformer(path)` loads and that embeds exactly as the
training-time model did: LoRA merged (or the adapter alone), pooling and normalisation in the
module list, the query prompt saved as the named prompt 'query', the tokenizer saved so that it
keeps the EOS contract on reload, a model card with the recipe and the data, and
training_info.json: what a leaderboard submission needs to know that only training knows."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import torch
import yaml
from sentence_transformers import SentenceTransformer

from recipe import cards, log
from recipe.config import ConfigError
from recipe.errors import Stopped
from recipe.hub import is_hub_id
from recipe.local_models import upstream_of
from recipe.schema import TRAINING_INFO, decontamination_report
from recipe.train.tokenize import save_tokenizer

PROBE = ["Instruct: Retrieve semantically similar text.\nQuery: A man is playing a guitar.",
         "A musician performs on stage.", "short", "a longer document about sourdough bread " * 40]


class WeightNotFinite(Stopped):
    """A weight holds NaN or inf: nothing is saved, since such a model embeds every text as NaN."""


def check_finite(tensors, where: str) -> None:
    """Raise WeightNotFinite naming the first tensor of (name, tensor) pairs that is not finite.

    The loss check stops a diverging run before its step; this is the last gate before a save, for
    what no loss sees: a merge of checkpoints, a conversion, a LoRA merge in low precision."""
    for name, tensor in tensors:
        if tensor.is_floating_point() or tensor.is_complex():
            bad = ~torch.isfinite(tensor)
            if bad.any():
                nan = tensor[bad].isnan()
                kinds = "NaN" if nan.all() else "inf" if not nan.any() else "NaN and inf"
                raise WeightNotFinite(f"{where} not written: the weight {name} holds {kinds} "
                                      f"({int(bad.sum())} of its {tensor.numel()} values)")


def query_prompt(template: str, instruction: str) -> str:
    if not template.endswith("{query}"):
        raise ValueError(f"query_template {template!r} must end with {{query}} to be saved as a prompt")
    return template[: -len("{query}")].format(instruction=instruction)


def saved_instruction(query_template: str, export_query_instruction: str | None, trained: Counter) -> str:
    """The instruction of the saved 'query' prompt, chosen before training: the one every record
    trained with; where they trained with several, export_query_instruction (refused when unset,
    since any choice would be a guess). `trained`: how many records trained with each instruction."""
    if "{instruction}" not in query_template:
        return ""
    if len(trained) == 1:
        (only,) = trained
        if export_query_instruction not in (None, only):
            log.note(f"the saved 'query' prompt carries {only!r}, the instruction every record trained with; "
                     f"export_query_instruction {export_query_instruction!r} applies where records train with several")
        return only
    if not export_query_instruction:
        common = ", ".join(repr(text) for text, _ in trained.most_common(2))
        raise ConfigError(f"the records train with {len(trained)} different instructions ({common}, ...): name the "
                          "one the saved 'query' prompt carries with --export-query-instruction TEXT")
    return export_query_instruction


def base_model_name(model: str) -> str:
    """What the base model is, as its users know it: a Hub id, the Hub model a packaged copy is of
    (recipe/local_models.py), the tiny random model, else the path it was read from."""
    if model == "tiny-mistral":
        return "a random 2-layer Mistral built offline (tiny-mistral)"
    return upstream_of(model) or model


def model_card(cfg, data_summary: dict, prompt: str) -> str:
    """final/README.md: recipe/templates/model_card.md filled with the run's settings and data."""
    from huggingface_hub import ModelCard, ModelCardData

    base_id = upstream_of(cfg.model) or (cfg.model if is_hub_id(cfg.model) else None)
    data = ModelCardData(library_name="sentence-transformers", base_model=base_id,
                         tags=["sentence-transformers", "feature-extraction", "e5-recipe"])
    settings = dict(vars(cfg))  # the template reads values; the run's settings object stays in training's files
    return cards.render(
        ModelCard, "model_card.md", data, cfg=settings, name=Path(cfg.output_dir).name, base=base_model_name(cfg.model),
        short=data_summary.get("records_short_of_negatives", 0), records=data_summary.get("records"),
        prompt=repr(prompt), dims=sorted(cfg.matryoshka_dims or [], reverse=True),
        data=json.dumps(data_summary, indent=2, ensure_ascii=False),
        recipe=yaml.safe_dump(settings, sort_keys=False, allow_unicode=True))


@torch.no_grad()
def export(model: SentenceTransformer, cfg, out: Path, data_summary: dict) -> Path:
    """Merge, save and reload-check; `model` is the unwrapped training model (changed in place)."""
    out = Path(out)
    model.eval()
    reference = model.encode(PROBE, convert_to_tensor=True, batch_size=len(PROBE))
    transformer = model[0]
    if cfg.lora and not cfg.export_adapter_only:
        transformer.model = transformer.model.merge_and_unload()  # assign it: peft issue 2032
    base = transformer.model
    for name in ("activation_checkpointing_disable", "gradient_checkpointing_disable"):
        if hasattr(base, name):
            getattr(base, name)()
            break
    # training pads (recipe/train/model.py); a user's model unpads as the library decides (FA2: packed)
    transformer.unpad_inputs = None
    prompt = query_prompt(cfg.query_template, data_summary.get("query_instruction", cfg.export_query_instruction or ""))
    model.prompts = {"query": prompt, "document": ""}
    model.default_prompt_name = None
    check_finite(model.state_dict().items(), f"{Path(cfg.output_dir) / 'final'}")
    model.save(str(out), create_model_card=False)
    if cfg.append_eos:
        save_tokenizer(transformer.tokenizer, out)
    (out / "README.md").write_text(model_card(cfg, data_summary, prompt), encoding="utf-8")
    (out / "recipe.yaml").write_text(yaml.safe_dump(vars(cfg), sort_keys=False, allow_unicode=True))
    write_training_info(model, cfg, out, data_summary)
    check_export(out, reference, cfg)
    return out


def _hub_id(source: str) -> str | None:
    """The Hub dataset a training source came from: a public set's copy (by its registry name, as
    build_mix writes it into every record), or the source itself when it is a Hub id."""
    from recipe.data.public import SOURCES

    if source in SOURCES:
        return SOURCES[source].hub_id
    return source if is_hub_id(source) else None


def decontamination_of(data: str) -> dict | None:
    """What data/decontaminate.py found for a training source, from its report on it (in a
    synthesis folder, or beside a file it wrote: `decontamination_report`). `overlaps_kept`: the records that overlap are still in this data (a
    --report-only report of it), so the model saw those tasks' evaluation texts."""
    from recipe.files import same_file

    path, report = Path(data), decontamination_report(data)
    if not report.is_file():
        return None
    try:
        r = json.loads(report.read_text(encoding="utf-8"))
        cleaned = bool(r.get("output")) and same_file(r["output"], path)
        return {"data": data, "report": str(report), "benchmark": r["benchmark"], "tasks": r["tasks"],
                "evaluation_texts": r["evaluation_texts"], "records": r["records"], "removed": r["removed"],
                "by_kind": r["by_kind"], "date": r.get("date"),
                "overlapping_tasks": sorted(row["task"] for row in r["table"] if row["records"]),
                "overlaps_kept": not cleaned}
    except (ValueError, KeyError, TypeError) as e:  # the model is trained by now: say so, do not fail
        return {"data": data, "report": str(report), "unreadable": f"{type(e).__name__}: {e}"}


def write_training_info(model: SentenceTransformer, cfg, out: Path, data_summary: dict) -> None:
    """OUTPUT/final/training_info.json, read by `eval.py --submission` (recipe/eval/submission.py)
    for mteb's ModelMeta: base model, licence, sizes, and every data source with its Hub id
    (the per-source counts training already made, so no data is read again)."""
    data = [{"name": name, "records": n["read"], "records_trained": n["used"], "hub_id": _hub_id(name)}
            for name, n in data_summary.get("per_source", {}).items()]
    base = model[0].model
    info = {
        "base_model": cfg.model, "license": cfg.license or None,
        "exported": datetime.now(timezone.utc).date().isoformat(),
        "n_parameters": sum(p.numel() for name, p in base.named_parameters() if "lora_" not in name),
        "n_embedding_parameters": base.get_input_embeddings().weight.numel(),
        "embed_dim": model.get_embedding_dimension(),
        "max_tokens": getattr(base.config, "max_position_embeddings", None) or cfg.max_length,
        "trained_max_length": cfg.max_length, "pooling": cfg.pooling, "query_template": cfg.query_template,
        "matryoshka_dims": sorted(cfg.matryoshka_dims, reverse=True) or None,
        "hub_model_id": cfg.hub_model_id or None, "training_data": data,
        "decontamination": [d for d in (decontamination_of(path) for path in cfg.data) if d],
    }
    (out / TRAINING_INFO).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def check_export(out: Path, reference: torch.Tensor, cfg) -> None:
    """Reload the folder the way a user would and compare embeddings with the training model's."""
    again = SentenceTransformer(str(out), device=str(reference.device))
    got = again.encode(PROBE, convert_to_tensor=True, batch_size=len(PROBE)).to(reference.dtype)
    cos = torch.nn.functional.cosine_similarity(got.float(), reference.float(), dim=1)
    if cos.min() < 0.99:  # bf16 merging moves cosines by ~1e-3; a lost EOS or pooling, by far more
        raise RuntimeError(f"{out}: the reloaded model embeds differently from the trained one "
                           f"(cosine {cos.min():.4f}); its tokenizer or pooling did not survive saving")
    if cfg.append_eos:
        features = again.preprocess(PROBE)
        from recipe.train.tokenize import check_features

        check_features(features, again[0].tokenizer.eos_token_id, PROBE)
