"""The training recipe: every key a YAML file or `--key value` may set, with its default and meaning."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from dataclasses import dataclass, field

from recipe.schema import QUERY_TEMPLATE


def _h(text: str) -> dict:
    return {"help": text}


@dataclass
class TrainConfig:
    RENAMED = {"torch_dtype": "dtype", "data_split": "split"}
    REMOVED = {"dedup_in_batch": "duplicate texts in a batch are now masked in the loss, and every record trains"}

    # model
    model: str = field(default="mistralai/Mistral-7B-v0.1", metadata=_h(
        "Hub id or local path of the base model; 'tiny-mistral' builds a random 2-layer Mistral offline; "
        "a local GGUF model's name (smollm2-135m-instruct, qwen2.5-coder-0.5b-instruct: recipe/local_models.py) "
        "its plain HF folder (recipe/local_student.py)"))
    tiny_model: dict[str, int] = field(default_factory=lambda: {
        "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 512},
        metadata=_h("shape of the 'tiny-mistral' model and its tokenizer's vocabulary"))
    pooling: str = field(default="lasttoken", metadata=_h(
        "lasttoken (decoders: the EOS token's last hidden state) or mean/cls (encoders)"))
    append_eos: bool = field(default=True, metadata=_h(
        "end every text in exactly one EOS token (the EOS contract); false for encoders"))
    padding_side: str = field(default="right", metadata=_h(
        "right (GradCache then trims each mini-batch's trailing pads) or left; pooling follows the mask"))
    max_length: int = field(default=512, metadata=_h("tokens per query or document, EOS included"))
    dtype: str = field(default="bfloat16", metadata=_h("weights dtype: bfloat16, float16 or float32"))
    attn_implementation: str = field(default="sdpa", metadata=_h(
        "sdpa, eager, flash_attention_2 (pip install flash-attn) or flex_attention"))
    gradient_checkpointing: bool = field(default=True, metadata=_h(
        "recompute activations (use_reentrant=False); with cached: true only GradCache's second "
        "(gradient) pass runs it, the first runs without gradients"))
    padding_free: bool = field(default=False, metadata=_h(
        "run each GradCache mini-batch as its real tokens only, packed (needs right padding and "
        "attn_implementation flash_attention_2, its varlen kernel, or flex_attention, a block-sparse "
        "mask; CUDA); same loss"))
    liger_kernels: bool = field(default=False, metadata=_h(
        "Liger's Triton kernels for RMSNorm, SwiGLU and RoPE (pip install liger-kernel; CUDA)"))
    cpu_threads: int = field(default=0, metadata=_h(
        "torch threads per process on CPU (0: torch's default)"))
    require_gpu: bool = field(default=False, metadata=_h("stop with a clear message when no GPU is visible"))
    # LoRA
    lora: bool = field(default=True, metadata=_h("train a LoRA adapter (false: train all weights)"))
    lora_r: int = field(default=16, metadata=_h("LoRA rank"))
    lora_alpha: int = field(default=32, metadata=_h("LoRA alpha"))
    lora_dropout: float = field(default=0.1, metadata=_h("LoRA dropout"))
    lora_target_modules: list[str] = field(default_factory=lambda: [
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        metadata=_h("modules that get a LoRA adapter"))
    # data
    data: list[str] = field(default_factory=list, metadata=_h(
        "sources: JSONL/Parquet files, synthesis output dirs, local dataset folders or Hub dataset ids, "
        "in our format, sentence-transformers columns or FlagEmbedding JSONL (README: Bring your own data)"))
    data_ratios: list[float] = field(default_factory=list, metadata=_h(
        "sampling ratio per source (0.1 keeps 10%, 2 repeats twice); empty: 1 for each"))
    data_instructions: str | list[str] = field(default="", metadata=_h(
        "instruction of records without one: one text for every source, or a list with one per source "
        "in the order of `data` ('': none)"))
    columns: list[str] = field(default_factory=list, metadata=_h(
        "FIELD=COLUMN pairs naming the column a field comes from, in sources that have it "
        "(query=question,positive=answer); fields: query, positive, negative, instruction, task_group, language"))
    split: str = field(default="train", metadata=_h("split of dataset sources (local folders, Hub ids)"))
    dataset_config: str | None = field(default=None, metadata=_h(
        "config of dataset sources (a published synthesis dataset: all or a task group)"))
    query_template: str = field(default=QUERY_TEMPLATE, metadata=_h(
        "query side text; documents get no instruction"))
    num_negatives: int = field(default=1, metadata=_h(
        "hard negatives each query brings to the batch (the paper: 1); a record's first ones are used"))
    missing_negatives: str = field(default="error", metadata=_h(
        "a record with fewer hard negatives than num_negatives: error (mine them first), in_batch "
        "(train it with the negatives it has and the batch's other documents) or random (fill with "
        "random documents of its task group)"))
    homogeneous_batches: str = field(default="none", metadata=_h(
        "none, task_group or source: draw each global batch from one group"))
    # loss and optimisation
    temperature: float = field(default=0.02, metadata=_h("InfoNCE temperature (scale = 1/temperature)"))
    global_batch_size: int = field(default=2048, metadata=_h("queries per optimiser step over all processes"))
    mini_batch_size: int = field(default=32, metadata=_h("texts per GradCache forward chunk"))
    cached: bool = field(default=True, metadata=_h("GradCache forward (false: one plain forward)"))
    group_by_length: bool = field(default=True, metadata=_h(
        "embed each column longest first, so GradCache mini-batches carry less padding (same loss)"))
    false_negative_margin: float | None = field(default=None, metadata=_h(
        "leave out of a query's softmax every candidate whose cosine exceeds its positive's by more than "
        "this (Qwen3-Embedding: 0.1); null: off"))
    matryoshka_dims: list[int] = field(default_factory=list, metadata=_h(
        "also train the embedding cut to these widths (e.g. 384,256,128,64), so that users can load it "
        "with truncate_dim; empty: off"))
    lr: float = field(default=1e-4, metadata=_h("peak learning rate"))
    warmup_steps: int = field(default=100, metadata=_h("linear warm-up steps"))
    weight_decay: float = field(default=0.1, metadata=_h("AdamW weight decay (not on biases and norms)"))
    max_grad_norm: float = field(default=0.0, metadata=_h("clip the gradient norm; 0 measures it only"))
    epochs: int = field(default=1, metadata=_h("passes over the data"))
    max_steps: int = field(default=0, metadata=_h("stop after this many steps (0: the epochs decide)"))
    ddp_find_unused_parameters: bool = field(default=False, metadata=_h(
        "true when some trainable weights get no gradient (a BERT pooler under mean pooling)"))
    process_group_timeout: int = field(default=7200, metadata=_h(
        "seconds a process waits for the others at a barrier: long enough for rank 0 to download "
        "and to export a 7B model (NCCL's default of 10 minutes is not)"))
    mixed_precision: str = field(default="bf16", metadata=_h("no, bf16 or fp16 (accelerate's setting)"))
    seed: int = field(default=42, metadata=_h("seed for data order, negatives and dropout"))
    # output
    output_dir: str = field(default="outputs/run", metadata=_h("checkpoints, logs and final/"))
    save_steps: int = field(default=100, metadata=_h("checkpoint every N steps (0: never)"))
    save_total_limit: int = field(default=2, metadata=_h("keep the newest N checkpoints"))
    resume: bool = field(default=False, metadata=_h(
        "continue the run in output_dir from its newest checkpoint to the configured end"))
    overwrite: bool = field(default=False, metadata=_h(
        "train again from step 0 in an output_dir that holds a run (its log, checkpoints and final/ are replaced)"))
    merge_checkpoints: int = field(default=0, metadata=_h(
        "final/ holds the merge of the last N checkpoints, the end of training being the newest "
        "(needs save_steps; 0: off)"))
    merge_method: str = field(default="average", metadata=_h(
        "average or spherical (SLERP, two at a time) merge of those checkpoints' weights (LoRA: of their deltas)"))
    log_steps: int = field(default=1, metadata=_h("log every N steps"))
    report_to: list[str] = field(default_factory=list, metadata=_h("accelerate trackers: tensorboard, wandb"))
    export_adapter_only: bool = field(default=False, metadata=_h("final/ holds the adapter, not merged weights"))
    export_query_instruction: str = field(
        default="Given a web search query, retrieve relevant passages that answer the query",
        metadata=_h("instruction of the saved 'query' prompt"))
    push_to_hub: bool = field(default=False, metadata=_h("upload final/ to the Hub"))
    hub_model_id: str = field(default="", metadata=_h("Hub repo for --push-to-hub, NAMESPACE/NAME"))
    license: str = field(default="", metadata=_h(
        "licence of the trained model as the Hub spells it (apache-2.0, mit); recorded in final/ "
        "for a leaderboard submission (eval.py --submission)"))


# attention that skips the other texts of a packed mini-batch: FA2's varlen kernel, flex's block-sparse mask
PACKED_ATTENTION = ("flash_attention_2", "flex_attention")

CHOICES = {
    "pooling": ("lasttoken", "mean", "cls", "max", "weightedmean"),
    "padding_side": ("left", "right"),
    "dtype": ("bfloat16", "float16", "float32"),
    "mixed_precision": ("no", "bf16", "fp16"),
    "homogeneous_batches": ("none", "task_group", "source"),
    "missing_negatives": ("error", "in_batch", "random"),
    "merge_method": ("average", "spherical"),
}


def validate(cfg: TrainConfig) -> TrainConfig:
    """Values a type check cannot catch, named before anything is loaded."""
    from recipe.config import ConfigError
    from recipe.data.records import parse_columns

    for key, allowed in CHOICES.items():
        if getattr(cfg, key) not in allowed:
            raise ConfigError(f"'{key}' = {getattr(cfg, key)!r}: choose one of {', '.join(allowed)}")
    for f in dataclasses.fields(cfg):  # inf passes "> 0" and ">= 0" but trains nothing
        value = getattr(cfg, f.name)
        if any(isinstance(v, float) and not math.isfinite(v) for v in (value if isinstance(value, list) else [value])):
            raise ConfigError(f"'{f.name}' = {value} must be a finite number")
    positive = ("max_length", "global_batch_size", "mini_batch_size", "epochs", "lora_r", "lora_alpha",
                "log_steps", "process_group_timeout", "temperature", "lr")
    for key in positive:
        if not getattr(cfg, key) > 0:
            raise ConfigError(f"'{key}' = {getattr(cfg, key)} must be > 0")
    if isinstance(cfg.data_instructions, list) and len(cfg.data_instructions) != len(cfg.data):
        raise ConfigError(f"'data_instructions' has {len(cfg.data_instructions)} values for {len(cfg.data)} "
                          "data sources (give one per source, or one text for all)")
    parse_columns(cfg.columns)
    not_negative = ("max_steps", "warmup_steps", "weight_decay", "max_grad_norm", "save_steps",
                    "save_total_limit", "cpu_threads", "seed", "num_negatives")
    for key in not_negative:
        if not getattr(cfg, key) >= 0:
            raise ConfigError(f"'{key}' = {getattr(cfg, key)} must be >= 0")
    if not 0 <= cfg.lora_dropout < 1:
        raise ConfigError(f"'lora_dropout' = {cfg.lora_dropout} must be in [0, 1)")
    for name, value in cfg.tiny_model.items():
        if value <= 0:
            raise ConfigError(f"'tiny_model' {name} = {value} must be > 0")
    for ratio in cfg.data_ratios:
        if not ratio > 0:
            raise ConfigError(f"'data_ratios' = {cfg.data_ratios}: every ratio must be > 0")
    if cfg.false_negative_margin is not None and cfg.false_negative_margin < 0:
        raise ConfigError(f"'false_negative_margin' = {cfg.false_negative_margin} must be >= 0 (or null: off)")
    if any(d <= 0 for d in cfg.matryoshka_dims) or len(set(cfg.matryoshka_dims)) != len(cfg.matryoshka_dims):
        raise ConfigError(f"'matryoshka_dims' = {cfg.matryoshka_dims}: widths must be > 0 and distinct")
    if cfg.merge_checkpoints == 1 or cfg.merge_checkpoints < 0:
        raise ConfigError(f"'merge_checkpoints' = {cfg.merge_checkpoints}: 0 (off) or the number of checkpoints "
                          "to merge, at least 2")
    if cfg.merge_checkpoints:
        if not cfg.save_steps:
            raise ConfigError(f"'merge_checkpoints' = {cfg.merge_checkpoints} needs checkpoints: set save_steps")
        if 0 < cfg.save_total_limit < cfg.merge_checkpoints:
            raise ConfigError(f"'merge_checkpoints' = {cfg.merge_checkpoints} but save_total_limit keeps "
                              f"{cfg.save_total_limit}: keep at least as many (or 0: all)")
        if cfg.lora and cfg.export_adapter_only:
            raise ConfigError("'merge_checkpoints' with export_adapter_only: merged LoRA deltas are not an "
                              "adapter of rank lora_r; export merged weights")
    if cfg.pooling == "lasttoken" and not cfg.append_eos:
        raise ConfigError("pooling 'lasttoken' reads the EOS token: set append_eos true (or another pooling)")
    if cfg.padding_free and (cfg.attn_implementation not in PACKED_ATTENTION or cfg.padding_side != "right"):
        raise ConfigError(f"'padding_free' needs attn_implementation {' or '.join(PACKED_ATTENTION)} (under "
                          f"{cfg.attn_implementation} a packed mini-batch attends through a dense mask over its "
                          "whole length) and padding_side right")
    if cfg.liger_kernels and importlib.util.find_spec("liger_kernel") is None:
        raise ConfigError("'liger_kernels' needs the liger-kernel package: pip install liger-kernel (CUDA only)")
    return cfg
