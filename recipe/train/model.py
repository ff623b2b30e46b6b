"""The embedder being trained: a SentenceTransformer (transformer, pooling, L2 normalisation),
with a LoRA adapter on the transformer, and the tiny offline Mistral the smoke recipe builds."""

from __future__ import annotations

from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

from recipe.eos import ensure_eos
from recipe.local_models import MODELS
from recipe.train.local_student import student_folder
from recipe.plain_text import transformer_kwargs
from recipe.train.packing import pack_before_forward
from recipe.train.tokenize import roundtrip

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def build_tiny_mistral(path: Path, texts: list[str], shape: dict[str, int], seed: int) -> Path:
    """A random Mistral of the given shape and a byte-level BPE tokenizer trained on `texts`,
    saved to `path`: everything offline, in seconds, deterministic for a seed."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import MistralConfig, MistralModel, PreTrainedTokenizerFast

    shape = dict(shape)
    vocab = shape.pop("vocab_size", 512)
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=vocab, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    tok.add_bos_token = True  # as Mistral's tokenizer does; the EOS contract adds the EOS
    tok.save_pretrained(path)
    config = MistralConfig(vocab_size=len(tok), bos_token_id=1, eos_token_id=2,
                           max_position_embeddings=4096, **shape)
    torch.manual_seed(seed)
    MistralModel(config).save_pretrained(path)
    return path


def enable_checkpointing(model) -> None:
    """Non-reentrant activation checkpointing, under its transformers 5 name where it exists."""
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def apply_liger(model) -> None:
    """Liger's Triton kernels for RMSNorm, SwiGLU and RoPE on this decoder (`liger_kernels`).
    None of its losses: the loss is ours. Liger patches the instance's modules and its model
    type's module-level RoPE function, so every model of that type built later in the process
    gets the RoPE kernel too."""
    import inspect

    from liger_kernel.transformers.monkey_patch import MODEL_TYPE_TO_APPLY_LIGER_FN

    from recipe.config import ConfigError

    apply = MODEL_TYPE_TO_APPLY_LIGER_FN.get(model.config.model_type)
    if apply is None:
        raise ConfigError(f"'liger_kernels': liger-kernel has no kernels for model type {model.config.model_type!r}")
    wanted = {"rope": True, "rms_norm": True, "swiglu": True, "cross_entropy": False,
              "fused_linear_cross_entropy": False}
    accepted = inspect.signature(apply).parameters
    apply(model=model, **{k: v for k, v in wanted.items() if k in accepted})


def keep_lora_input_dtype(model) -> None:
    """`lora_cast_input: false`: what peft.helpers.disable_input_dtype_casting does inside its
    `with`, for the whole run: each LoRA layer takes its input in the dtype it comes in (under
    autocast, bf16) instead of copying it to the adapter's float32 first."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    for module in model.modules():
        if isinstance(module, BaseTunerLayer):
            module.cast_input_dtype_enabled = False


def build_model(cfg, workdir: Path, texts: list[str] | None = None, rank: int = 0,
                base=None, device: torch.device | str = "cpu") -> SentenceTransformer:
    """Load the base model as a SentenceTransformer and put the LoRA adapter on it. With several
    processes, rank 0 runs first (it builds the tiny model; the others reuse it) and each process
    round-trips the tokenizer through its own folder. The weights are loaded straight onto
    `device` (this process's GPU), not into host memory first: eight processes would otherwise
    hold eight copies of a 7B model's 14.5 GB in RAM at once. `base`: a transformers model
    already built (benchmarks: random 7B weights made on the GPU) in place of `cfg.model`'s
    weights, whose tokenizer is still used; the SentenceTransformer is then put on `base`'s device."""
    path = cfg.model
    if path == "tiny-mistral":
        tiny = workdir / "tiny-mistral"
        if rank == 0 or not (tiny / "config.json").is_file():
            build_tiny_mistral(tiny, texts or ["a"], cfg.tiny_model, cfg.seed)
        path = str(tiny)
    elif path in MODELS:  # a local GGUF model, as the plain folder made from it once
        path = str(student_folder(path))
    transformer = Transformer(
        path, max_seq_length=cfg.max_length,
        # no Hub kernels: loaded onto a GPU, transformers would fetch some for it, chosen for the eval
        # mode a model loads in; the kernels the recipe runs are its keys' (attn_implementation, liger_kernels)
        model_kwargs={"dtype": DTYPES[cfg.dtype], "attn_implementation": cfg.attn_implementation,
                      "device_map": {"": str(device)}, "use_kernels": False},
        # no KV cache: an embedder never generates, and Mistral + right padding + FA2 needs it off
        config_kwargs={"use_cache": False},
        # padded features: the step reads the attention mask (EOS check, grouping, GradCache's
        # mini-batches); `padding_free` packs each mini-batch later (recipe/train/packing.py)
        unpad_inputs=False,
        # an instruct base's chat template must not wrap the recipe's texts (recipe/plain_text.py)
        **transformer_kwargs())
    if base is not None:
        transformer.model = base
    if cfg.liger_kernels:
        apply_liger(transformer.model)
    if cfg.append_eos:
        tok = transformer.tokenizer
        tok.model_max_length = cfg.max_length
        ensure_eos(tok, cfg.padding_side)
        transformer.processor = roundtrip(tok, workdir / f"tokenizer-{rank}")
    else:
        transformer.tokenizer.padding_side = cfg.padding_side
    if cfg.gradient_checkpointing:
        # non-reentrant: the reentrant variant breaks under DDP (sentence-transformers issue 2844)
        enable_checkpointing(transformer.model)
    if cfg.lora:
        from peft import LoraConfig, get_peft_model

        transformer.model = get_peft_model(transformer.model, LoraConfig(
            r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, bias="none",
            target_modules=list(cfg.lora_target_modules)))
        if not cfg.lora_cast_input:
            keep_lora_input_dtype(transformer.model)
    if cfg.padding_free:
        transformer.register_forward_pre_hook(pack_before_forward)
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode=cfg.pooling)
    return SentenceTransformer(modules=[transformer, pooling, Normalize()],
                               device=str(device if base is None else base.device))

