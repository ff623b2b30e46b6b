"""The training recipe: every key a YAML file or `--key value` may set, with its default and meaning."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from dataclasses import dataclass

from recipe.config import ConfigError, check_choices, setting
from recipe.schema import QUERY_TEMPLATE


# attention that skips the other texts of a packed mini-batch: FA2's varlen kernel, flex's block-sparse mask
PACKED_ATTENTION = ("flash_attention_2", "flex_attention")

@dataclass
class TrainConfig:
    # model
    model: str = setting(
        "mistralai/Mistral-7B-v0.1", "Hub id or local path of the base model; 'tiny-mistral' builds a random 2-layer "
        "Mistral offline; a local GGUF model's name (smollm2-135m-instruct, qwen2.5-coder-0.5b-instruct: "
        "recipe/local_models.py) its plain HF folder (recipe/train/local_student.py)")
    tiny_model: dict[str, int] = setting({
        "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 512},
        "shape of the 'tiny-mistral' model and its tokenizer's vocabulary")
    pooling: str = setting(
        "lasttoken", "lasttoken (decoders: the EOS token's last hidden state) or mean/cls (encoders)",
        choices=("lasttoken", "mean", "cls", "max", "weightedmean"))
    append_eos: bool = setting(True, "end every text in exactly one EOS token (the EOS contract); false for encoders")
    padding_side: str = setting(
        "right", "right (GradCache then trims each mini-batch's trailing pads) or left; pooling follows the mask",
        choices=("left", "right"))
    max_length: int = setting(512, "tokens per query or document, EOS included")
    dtype: str = setting("bfloat16", "weights dtype: bfloat16, float16 or float32",
                         choices=("bfloat16", "float16", "float32"))
    attn_implementation: str = setting(
        "sdpa", "sdpa, eager, flash_attention_2 (pip install flash-attn) or flex_attention")
    gradient_checkpointing: bool = setting(
        True, "recompute activations (use_reentrant=False); with cached: true only GradCache's second (gradient) "
        "pass runs it, the first runs without gradients")
    padding_free: bool = setting(
        False, "run each GradCache mini-batch as its real tokens only, packed (needs right padding and "
        "attn_implementation flash_attention_2, its varlen kernel, or flex_attention, a block-sparse mask; CUDA); "
        "same loss")
    liger_kernels: bool = setting(
        False, "Liger's Triton kernels for RMSNorm, SwiGLU and RoPE (pip install liger-kernel; CUDA)")
    cpu_threads: int = setting(0, "torch threads per process on CPU (0: torch's default)")
    require_gpu: bool = setting(False, "stop with a clear message when no GPU is visible")
    # LoRA
    lora: bool = setting(True, "train a LoRA adapter (false: train all weights)")
    lora_r: int = setting(16, "LoRA rank")
    lora_alpha: int = setting(32, "LoRA alpha")
    lora_dropout: float = setting(0.1, "LoRA dropout")
    lora_target_modules: list[str] = setting([
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        "modules that get a LoRA adapter")
    lora_cast_input: bool = setting(
        True, "peft casts each LoRA layer's input to the adapter's float32, a copy per layer and pass that bf16 "
        "autocast casts straight back; false leaves it in the autocast dtype (peft.helpers."
        "disable_input_dtype_casting; needs mixed_precision bf16 or fp16). Same loss; its speed is the GPU suite's")
    # data
    data: list[str] = setting(
        [], "sources: JSONL/Parquet files, synthesis output dirs, local dataset folders or Hub dataset ids, in our "
        "format, sentence-transformers columns or FlagEmbedding JSONL (README: Bring your own data)")
    data_ratios: list[float] = setting(
        [], "sampling ratio per source (0.1 keeps 10%, 2 repeats twice); empty: 1 for each")
    data_instructions: str | list[str] = setting(
        "", "instruction of records without one: one text for every source, or a list with one per source in the "
        "order of `data` ('': none)")
    columns: list[str] = setting(
        [], "FIELD=COLUMN pairs naming the column a field comes from, in sources that have it "
        "(query=question,positive=answer); fields: query, positive, negative, instruction, task_group, language")
    split: str = setting("train", "split of dataset sources (local folders, Hub ids)")
    dataset_config: str | None = setting(
        None, "config of dataset sources (a published synthesis dataset: all or a task group)")
    query_template: str = setting(QUERY_TEMPLATE, "query side text; documents get no instruction")
    num_negatives: int = setting(
        1, "hard negatives each query brings to the batch (the paper: 1); a record's first ones are used")
    missing_negatives: str = setting(
        "error", "a record with fewer hard negatives than num_negatives: error (mine them first), in_batch (train it "
        "with the negatives it has and the batch's other documents) or random (fill with random documents of its "
        "task group)", choices=("error", "in_batch", "random"))
    homogeneous_batches: str = setting("none", "none, task_group or source: draw each global batch from one group",
                                       choices=("none", "task_group", "source"))
    # loss and optimisation
    temperature: float = setting(0.02, "InfoNCE temperature (scale = 1/temperature)")
    global_batch_size: int = setting(2048, "queries per optimiser step over all processes")
    mini_batch_size: int = setting(
        32, "texts per forward chunk: GradCache's, or with cached false and group_by_length the plain forward's")
    cached: bool = setting(True, "GradCache forward (false: one plain forward)")
    group_by_length: bool = setting(
        True, "embed each column longest first in mini-batches of mini_batch_size (GradCache's, or with cached false "
        "all kept for one backward), so they carry less padding (same loss)")
    false_negative_margin: float | None = setting(
        None, "leave out of a query's softmax every candidate whose cosine exceeds its positive's by more than this "
        "(Qwen3-Embedding: 0.1); null: off")
    matryoshka_dims: list[int] = setting(
        [], "also train the embedding cut to these widths (e.g. 384,256,128,64), so that users can load it with "
        "truncate_dim; empty: off")
    learning_rate: float = setting(1e-4, "peak learning rate")
    warmup_steps: int = setting(100, "linear warm-up steps")
    weight_decay: float = setting(0.1, "AdamW weight decay (not on biases and norms)")
    max_grad_norm: float = setting(0.0, "clip the gradient norm; 0 measures it only")
    num_train_epochs: int = setting(1, "passes over the data")
    max_steps: int = setting(
        0, "train exactly this many steps, over as many passes as they take (overrides num_train_epochs, as in "
        "transformers); 0: num_train_epochs decides")
    ddp_find_unused_parameters: bool = setting(
        False, "true when some trainable weights get no gradient (a BERT pooler under mean pooling)")
    process_group_timeout: int = setting(
        7200, "seconds a process waits for the others at a barrier: long enough for rank 0 to download and to export "
        "a 7B model (NCCL's default of 10 minutes is not)")
    mixed_precision: str = setting("bf16", "no, bf16 or fp16 (accelerate's setting)", choices=("no", "bf16", "fp16"))
    seed: int = setting(42, "seed for data order, negatives and dropout")
    # output
    output_dir: str = setting("outputs/run", "checkpoints, logs and final/")
    save_steps: int = setting(100, "checkpoint every N steps (0: never)")
    save_total_limit: int = setting(2, "keep the newest N checkpoints")
    resume: bool = setting(False, "continue the run in output_dir from its newest checkpoint to the configured end")
    overwrite: bool = setting(
        False, "train again from step 0 in an output_dir that holds a run (its log, checkpoints and final/ are "
        "replaced)")
    merge_checkpoints: int = setting(
        0, "final/ holds the merge of the last N checkpoints, the end of training being the newest (needs "
        "save_steps; 0: off)")
    merge_method: str = setting(
        "average", "average or spherical (SLERP, two at a time) merge of those checkpoints' weights (LoRA: of their "
        "deltas)", choices=("average", "spherical"))
    logging_steps: int = setting(1, "log every N steps")
    eval_split_size: int = setting(
        0, "hold out this many training records (distinct query-positive pairs, seeded, before the batches are "
        "planned; never trained on) as a dev set, scored every eval_steps: eval_accuracy, eval_loss; 0: off")
    eval_steps: int = setting(100, "score the dev set every N steps, and at the end (with eval_split_size)")
    load_best_model_at_end: bool = setting(
        False, "final/ exports the checkpoint (or the end of training) with the best eval_accuracy, not the last "
        "step (needs eval_split_size, and save_steps a multiple of eval_steps); the best checkpoint is kept from "
        "save_total_limit's deletion")
    report_to: list[str] = setting(
        [], "accelerate trackers: tensorboard (pip install -e .[train]), wandb, ...; a tracker whose package is not "
        "installed is refused ('': none)")
    export_adapter_only: bool = setting(False, "final/ holds the adapter, not merged weights")
    export_query_instruction: str | None = setting(
        None, "instruction of the saved 'query' prompt where the records train with several (synthetic data: one per "
        "task); a run whose records all train with one saves that one; null: that one, and a run with several is "
        "refused before training")
    push_to_hub: bool = setting(False, "upload final/ to the Hub")
    hub_model_id: str = setting("", "Hub repo for --push-to-hub, NAMESPACE/NAME")
    license: str = setting(
        "", "licence of the trained model as the Hub spells it (apache-2.0, mit); recorded in final/ for a "
        "leaderboard submission (eval.py --submission)")

    def check(self) -> None:
        """Values a type check cannot catch, named before anything is loaded."""
        from recipe.data.records import parse_columns

        check_choices(self)
        for f in dataclasses.fields(self):  # inf passes "> 0" and ">= 0" but trains nothing
            value = getattr(self, f.name)
            values = value if isinstance(value, list) else [value]
            if any(isinstance(v, float) and not math.isfinite(v) for v in values):
                raise ConfigError(f"'{f.name}' = {value} must be a finite number")
        positive = ("max_length", "global_batch_size", "mini_batch_size", "num_train_epochs", "lora_r", "lora_alpha",
                    "logging_steps", "eval_steps", "process_group_timeout", "temperature", "learning_rate")
        for key in positive:
            if not getattr(self, key) > 0:
                raise ConfigError(f"'{key}' = {getattr(self, key)} must be > 0")
        if isinstance(self.data_instructions, list) and len(self.data_instructions) != len(self.data):
            raise ConfigError(f"'data_instructions' has {len(self.data_instructions)} values for {len(self.data)} "
                              "data sources (give one per source, or one text for all)")
        parse_columns(self.columns)
        given = [self.data_instructions] if isinstance(self.data_instructions, str) else self.data_instructions
        if any(text.strip() for text in given) and "{instruction}" not in self.query_template:
            raise ConfigError(f"'data_instructions' is set but query_template {self.query_template!r} has no "
                              "{instruction}: the queries would train without it; drop data_instructions or use a "
                              "template with {instruction}")
        not_negative = ("max_steps", "warmup_steps", "weight_decay", "max_grad_norm", "save_steps",
                        "save_total_limit", "cpu_threads", "seed", "num_negatives", "eval_split_size")
        for key in not_negative:
            if not getattr(self, key) >= 0:
                raise ConfigError(f"'{key}' = {getattr(self, key)} must be >= 0")
        if not 0 <= self.lora_dropout < 1:
            raise ConfigError(f"'lora_dropout' = {self.lora_dropout} must be in [0, 1)")
        for name, value in self.tiny_model.items():
            if value <= 0:
                raise ConfigError(f"'tiny_model' {name} = {value} must be > 0")
        for ratio in self.data_ratios:
            if not ratio > 0:
                raise ConfigError(f"'data_ratios' = {self.data_ratios}: every ratio must be > 0")
        if self.false_negative_margin is not None and self.false_negative_margin < 0:
            raise ConfigError(f"'false_negative_margin' = {self.false_negative_margin} must be >= 0 (or null: off)")
        if any(d <= 0 for d in self.matryoshka_dims) or len(set(self.matryoshka_dims)) != len(self.matryoshka_dims):
            raise ConfigError(f"'matryoshka_dims' = {self.matryoshka_dims}: widths must be > 0 and distinct")
        if self.merge_checkpoints == 1 or self.merge_checkpoints < 0:
            raise ConfigError(f"'merge_checkpoints' = {self.merge_checkpoints}: 0 (off) or the number of checkpoints "
                              "to merge, at least 2")
        if self.merge_checkpoints:
            if not self.save_steps:
                raise ConfigError(f"'merge_checkpoints' = {self.merge_checkpoints} needs checkpoints: set save_steps")
            if 0 < self.save_total_limit < self.merge_checkpoints:
                raise ConfigError(f"'merge_checkpoints' = {self.merge_checkpoints} but save_total_limit keeps "
                                  f"{self.save_total_limit}: keep at least as many (or 0: all)")
            if self.lora and self.export_adapter_only:
                raise ConfigError("'merge_checkpoints' with export_adapter_only: merged LoRA deltas are not an "
                                  "adapter of rank lora_r; export merged weights")
        self._check_best_model()
        if self.pooling == "lasttoken" and not self.append_eos:
            raise ConfigError("pooling 'lasttoken' reads the EOS token: set append_eos true (or another pooling)")
        if self.padding_free and (self.attn_implementation not in PACKED_ATTENTION or self.padding_side != "right"):
            raise ConfigError(f"'padding_free' needs attn_implementation {' or '.join(PACKED_ATTENTION)} (under "
                              f"{self.attn_implementation} a packed mini-batch attends through a dense mask over its "
                              "whole length) and padding_side right")
        if self.lora and not self.lora_cast_input and self.mixed_precision == "no" and self.dtype != "float32":
            raise ConfigError(f"'lora_cast_input' false needs mixed_precision bf16 or fp16: without autocast the "
                              f"{self.dtype} input of each LoRA layer meets its float32 weights")
        if self.liger_kernels and importlib.util.find_spec("liger_kernel") is None:
            raise ConfigError("'liger_kernels' needs the liger-kernel package: pip install liger-kernel (CUDA only)")

    def _check_best_model(self) -> None:
        """load_best_model_at_end picks among the checkpoints that were scored, as transformers' Trainer does."""
        if not self.load_best_model_at_end:
            return
        if not self.eval_split_size:
            raise ConfigError("'load_best_model_at_end' needs a dev set to pick by: set eval_split_size")
        if not self.save_steps or self.save_steps % self.eval_steps:
            raise ConfigError(f"'load_best_model_at_end' needs save_steps ({self.save_steps}) to be a multiple of "
                              f"eval_steps ({self.eval_steps}), so that every checkpoint is scored")
        if self.merge_checkpoints:
            raise ConfigError("'load_best_model_at_end' and 'merge_checkpoints' both say what final/ holds: "
                              "choose one")


def check_trackers(names: list[str]) -> None:
    """`report_to`: accelerate leaves out a tracker whose package is missing with a debug line
    only, so that a run asked to log would log nothing; refused instead, naming the package."""
    if not names:
        return
    from accelerate.tracking import get_available_trackers  # torch: only when trackers are asked for
    from accelerate.utils import LoggerType

    available = {str(t) for t in get_available_trackers()}
    for name in names:
        if name not in LoggerType.list():
            raise ConfigError(f"'report_to' {name!r}: accelerate has no such tracker; choose from "
                              f"{', '.join(LoggerType.list())}")
        if name != "all" and name not in available:
            how = "pip install -e .[train], or pip install tensorboard" if name == "tensorboard" else f"pip install {name}"
            raise ConfigError(f"'report_to' {name}: its package is not installed ({how}); or leave it out: "
                              "--report-to ''")
