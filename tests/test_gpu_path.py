"""The GPU path, checked on CPU too: each check is parametrised by device, so the CPU half runs
with every test run and keeps the code of the CUDA half alive between the rare times a GPU is at
hand. `pytest -m gpu` selects the CUDA half (benchmarks/gpu_suite.py runs it first; without a GPU
it skips). bf16 on CUDA (the recipe's dtype there), float32 on CPU; on CUDA the model is prepared by
accelerate in bf16 mixed precision as train.py prepares it: autocast around the model's forward
alone, the loss on float32 embeddings.

- GradCache's RNG replay under LoRA dropout: the cached loss and gradients equal a plain forward
  that draws the same dropout masks;
- the gather path without NCCL: a one-process group, and two processes sharing one device;
- the EOS contract and last-token pooling with a Mistral-shaped tokenizer, left and right padding;
- export of a LoRA model, reloaded with SentenceTransformer, embedding as the training model did;
- the speed levers (recipe keys) keep the loss and gradients: gradient_checkpointing off,
  padding_free, lora_cast_input off, and, where installed, flash_attention_2 and liger_kernels;
- the step the benchmarks time is train.py's: autocast around the model alone, the loss in float32.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace

import pytest
import torch

from recipe.train.loss import build_loss, infonce
from recipe.train.tokenize import encode
from tests.train_helpers import ROOT, assert_same_gradients, columns, smoke_config, tiny_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CUDA = pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device")])
DEVICES = ["cpu", CUDA]
# per dtype: gradients within this share of each tensor's largest entry, cosines within this of 1
TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 3e-2}


def installed(package: str):
    return pytest.mark.skipif(importlib.util.find_spec(package) is None, reason=f"{package} is not installed")


def tiny_on(device: str, workdir, mixed_precision: str | None = None, **overrides):
    """The smoke recipe's tiny model with warm LoRA weights, on `device` in the recipe's dtype there
    (unless `dtype` is given), prepared by accelerate in `mixed_precision` (default: bf16 on CUDA)."""
    overrides.setdefault("dtype", "bfloat16" if device == "cuda" else "float32")
    model, examples, cfg = tiny_model(workdir, **overrides)
    return prepared(model.to(device), device, mixed_precision or ("bf16" if device == "cuda" else "no")), examples, cfg


def prepared(model, device: str, mixed_precision: str):
    """The model as train.py's `accelerator.prepare` leaves it on one process: in bf16 mixed
    precision, autocast around its forward alone and its outputs cast to float32."""
    from accelerate import Accelerator

    return Accelerator(mixed_precision=mixed_precision, cpu=device == "cpu").prepare_model(model, device_placement=False)


def tolerance(model) -> float:
    return TOLERANCE[next(model[0].model.parameters()).dtype]


def features_on(model, texts: list[list[str]], device: str) -> list[dict]:
    return [{k: v.to(device) if torch.is_tensor(v) else v for k, v in encode(model, column, True).items()}
            for column in texts]


def loss_and_grads(model, compute) -> tuple[torch.Tensor, dict]:
    """`compute()` -> loss (the model's own autocast, if prepared in mixed precision), then its gradients."""
    model.zero_grad(set_to_none=True)
    loss = compute()
    loss.backward()
    return loss.detach().float(), {n: p.grad.float().cpu() for n, p in model.named_parameters() if p.requires_grad}


def cached_loss(model, features, mini_batch: int = 4, grouped: bool = True):
    loss_fn = build_loss(model, 0.02, True, mini_batch, False, group_by_length=grouped)
    return loss_and_grads(model, lambda: loss_fn([dict(f) for f in features], None))


def worst_difference(got: dict, want: dict) -> float:
    return max(float((got[n] - g).abs().max() / g.abs().max()) for n, g in want.items())


# ---------------------------------------------------------------- GradCache, gathering


@pytest.mark.parametrize("device", DEVICES)
def test_cached_loss_replays_the_lora_dropout_of_a_plain_forward(device, tmp_path):
    """GradCache embeds every mini-batch twice, without and then with gradients, and replays the
    RNG state (CPU and CUDA) so that dropout draws the same masks. A plain forward that embeds
    the same mini-batches in the same order from the same seed draws those masks too: its loss
    and gradients must be the cached ones. Were the replay's masks others, the gradients would
    be another forward's, as the last assertion shows they would."""
    model, examples, _ = tiny_on(device, tmp_path, lora_dropout=0.1)
    model.train()
    features = features_on(model, columns(examples[:12]), device)
    loss_fn = build_loss(model, 0.02, True, 4, False)

    def cached():
        torch.manual_seed(3)
        return loss_fn([dict(f) for f in features], None)

    def plain(seed):
        torch.manual_seed(seed)
        reps = [torch.cat([e.float() for e, _ in loss_fn.embed_minibatch_iter(f, True, copy_random_state=False)])
                for f in features]
        return infonce(reps[0], reps[1:], None, loss_fn.scale, False, 4)[0]

    got, g_cached = loss_and_grads(model, cached)
    want, g_plain = loss_and_grads(model, lambda: plain(3))
    tol = tolerance(model)
    assert torch.allclose(got, want, rtol=tol, atol=0), (got, want)
    assert_same_gradients(g_cached, g_plain, rel=tol)
    _, g_other = loss_and_grads(model, lambda: plain(4))
    assert worst_difference(g_other, g_plain) > 5 * tol


@pytest.mark.parametrize("device", DEVICES)
def test_gather_on_a_one_process_group_equals_no_gather(device, tmp_path):
    """The gather path (all_gather_with_grad, the rank's row offset, the duplicate mask on the
    device) on a one-process gloo group: the loss, accuracy and embedding gradients of no gather."""
    import torch.distributed as dist

    from recipe.train.batch import make_batch
    from tests.test_train_loss import with_duplicates

    _, examples, _ = tiny_model(tmp_path / "m", warm_lora=False)
    ids = make_batch(with_duplicates(examples[:8]), list(range(8)), 0, 1, num_negatives=2).ids
    gen = torch.Generator().manual_seed(0)
    embeddings = [torch.nn.functional.normalize(torch.randn(8, 16, generator=gen), dim=1).to(device) for _ in range(4)]
    results = {}
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/rdzv", rank=0, world_size=1)
    try:
        for gather in (True, False):
            leaves = [c.clone().requires_grad_() for c in embeddings]
            loss, accuracy = infonce(leaves[0], leaves[1:], ids, 50.0, gather, chunk=3)
            loss.backward()
            results[gather] = (loss.detach(), accuracy, [leaf.grad for leaf in leaves])
    finally:
        dist.destroy_process_group()
    (loss, acc, grads), (ref, ref_acc, ref_grads) = results[True], results[False]
    assert torch.allclose(loss, ref, rtol=1e-6) and acc == ref_acc
    for g, r in zip(grads, ref_grads):
        assert torch.allclose(g, r, rtol=1e-5, atol=1e-7)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_two_gloo_processes_on_one_gpu_equal_one_process(tmp_path):
    """tests/test_train_loss.py's two-process check (DDP, the cached grouped loss, duplicates
    across the processes) with both processes on one GPU: gloo, since NCCL needs a GPU per rank."""
    from tests.test_train_loss import two_processes_against_one

    two_processes_against_one(tmp_path, tiny_model(tmp_path / "tiny", lora_dropout=0.0), "cuda")


# ---------------------------------------------------------------- EOS, pooling, export


@pytest.mark.parametrize("device", DEVICES)
def test_eos_and_last_token_pooling_with_a_mistral_shaped_tokenizer(device, tmp_path):
    """A Mistral-style LlamaTokenizer (no EOS of its own) on a tiny Mistral: every text ends in one
    EOS on the device, the embedding is the EOS token's state, and a text embeds the same alone
    and padded in a batch, with right and left padding."""
    from transformers import MistralConfig, MistralModel

    from recipe.eos import check_features
    from recipe.train.model import build_model
    from tests.train_helpers import mistral_style_tokenizer, smoke_config

    texts = ["short", "a much longer text about the weather in the mountains today " * 12,
             "a text that ends with </s>", "two words"]
    folder = tmp_path / "mistral-style"
    tok = mistral_style_tokenizer(folder, texts)
    torch.manual_seed(0)
    MistralModel(MistralConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                               num_attention_heads=4, num_key_value_heads=2, bos_token_id=tok.bos_token_id,
                               eos_token_id=tok.eos_token_id)).save_pretrained(folder)
    cfg = smoke_config(model=str(folder), dtype="bfloat16" if device == "cuda" else "float32", lora_dropout=0.0)
    model = build_model(cfg, tmp_path / "work").to(device).eval()
    tol = tolerance(model)
    eos = model[0].tokenizer.eos_token_id
    with torch.no_grad():
        alone = torch.cat([model(features_on(model, [[t]], device)[0])["sentence_embedding"] for t in texts])
        for side in ("right", "left"):
            model[0].tokenizer.padding_side = side
            features = features_on(model, [texts], device)[0]
            check_features(features, eos, texts)
            assert features["input_ids"].shape[1] == cfg.max_length  # the long text is cut, keeping its EOS
            out = model[1](model[0](dict(features)))
            mask = features["attention_mask"]
            last = torch.where(mask.bool(), torch.arange(mask.shape[1], device=device), -1).max(1).values
            eos_states = out["token_embeddings"][torch.arange(len(texts), device=device), last]
            assert torch.allclose(out["sentence_embedding"].float(), eos_states.float())
            batch = torch.nn.functional.normalize(out["sentence_embedding"].float(), dim=1)
            cosine = torch.nn.functional.cosine_similarity(batch, alone.float(), dim=1)
            assert cosine.min() > 1 - tol, (side, cosine)


@pytest.mark.parametrize("device", DEVICES)
def test_export_reloads_to_the_training_models_embeddings(device, tmp_path):
    """final/ as train.py writes it (LoRA merged, pooling, normalisation, the EOS tokenizer),
    loaded with SentenceTransformer on the device, embeds as the model it came from."""
    from sentence_transformers import SentenceTransformer

    from recipe.train.export import PROBE, export

    model, _, cfg = tiny_on(device, tmp_path, lora_dropout=0.1)
    model.eval()
    with torch.no_grad():
        trained = model.encode(PROBE, convert_to_tensor=True)
    out = export(model, cfg, tmp_path / "final", {})
    again = SentenceTransformer(str(out), device=device)
    got = again.encode(PROBE, convert_to_tensor=True)
    cosine = torch.nn.functional.cosine_similarity(got.float(), trained.float(), dim=1)
    assert cosine.min() > 1 - tolerance(model), cosine
    assert again.prompts["query"].startswith("Instruct: ")


# ---------------------------------------------------------------- speed levers


@pytest.mark.parametrize("device", DEVICES)
def test_gradient_checkpointing_off_keeps_loss_and_gradients(device, tmp_path):
    """`gradient_checkpointing: false`: GradCache's second pass keeps its activations instead of
    recomputing them; with LoRA dropout on, the same loss and gradients."""
    runs = {}
    for on in (True, False):
        model, examples, _ = tiny_on(device, tmp_path / str(on), gradient_checkpointing=on, lora_dropout=0.1)
        layer = model[0].model.base_model.model.layers[0]
        assert layer.gradient_checkpointing is on  # the comparison is not of one setting with itself
        model.train()
        features = features_on(model, columns(examples[:12]), device)
        torch.manual_seed(5)
        runs[on] = cached_loss(model, features)
    tol = tolerance(model)
    assert torch.allclose(runs[True][0], runs[False][0], rtol=tol, atol=0)
    assert_same_gradients(runs[False][1], runs[True][1], rel=tol)


def test_pack_gives_what_transformers_collator_gives():
    """recipe/train/packing.py packs a right-padded mini-batch as DataCollatorWithFlattening packs
    the same texts: the keys transformers' flash-attention path reads, same values and dtypes."""
    from transformers import DataCollatorWithFlattening

    from recipe.train.packing import pack

    rows = [[1, 5, 6, 2], [1, 7, 2], [1, 2]]
    ids = torch.tensor([r + [2] * (4 - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (4 - len(r)) for r in rows])
    got = pack({"input_ids": ids, "attention_mask": mask, "modality": "text"})
    want = DataCollatorWithFlattening(return_flash_attn_kwargs=True, return_position_ids=True)(
        [{"input_ids": r} for r in rows], return_tensors="pt")
    for key in ("input_ids", "position_ids", "cu_seq_lens_q", "cu_seq_lens_k"):
        assert torch.equal(got[key], want[key]) and got[key].dtype == want[key].dtype, key
    assert got["max_length_q"] == got["max_length_k"] == want["max_length_q"] == 4
    assert "attention_mask" not in got and got["modality"] == "text"


@pytest.mark.parametrize("device", DEVICES)
def test_padding_free_keeps_loss_and_gradients(device, tmp_path):
    """`padding_free: true` runs each mini-batch as its real tokens only (the model sees no pad),
    with the loss and gradients of the padded run. Under sdpa (CPU, or CUDA without flash-attn)
    the packed texts attend through transformers' block mask; with flash-attn, the varlen kernel."""
    attn = "flash_attention_2" if device == "cuda" and importlib.util.find_spec("flash_attn") else "sdpa"
    runs, seen = {}, []
    for packed in (False, True):
        model, examples, _ = tiny_on(device, tmp_path / str(packed), padding_free=packed, lora_dropout=0.0,
                                     attn_implementation=attn)
        model.train()
        features = features_on(model, columns(examples[:12]), device)
        handle = model[0].register_forward_pre_hook(lambda module, args: seen.append(args[0]["input_ids"].numel()))
        seen.clear()
        runs[packed] = cached_loss(model, features)
        handle.remove()
    real = sum(int(f["attention_mask"].sum()) for f in features)
    assert sum(seen) == 2 * real  # the no-grad pass and the replay, each over the real tokens only
    tol = tolerance(model)
    assert torch.allclose(runs[True][0], runs[False][0], rtol=tol, atol=0)
    assert_same_gradients(runs[True][1], runs[False][1], rel=tol)


def test_padding_free_and_liger_are_checked_before_anything_loads():
    from recipe.config import ConfigError
    from tests.train_helpers import smoke_config

    with pytest.raises(ConfigError, match="flash_attention_2 or flex_attention"):
        smoke_config(padding_free=True).check()
    if importlib.util.find_spec("liger_kernel") is None:
        with pytest.raises(ConfigError, match="pip install liger-kernel"):
            smoke_config(liger_kernels=True).check()
    for attn in ("flash_attention_2", "flex_attention"):
        smoke_config(padding_free=True, attn_implementation=attn).check()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("attn, packed", [
    pytest.param("flash_attention_2", False, marks=installed("flash_attn")),
    pytest.param("flash_attention_2", True, marks=installed("flash_attn")),
    ("flex_attention", True)])  # no package: torch compiles it (its backward needs CUDA)
def test_other_attention_keeps_loss_and_gradients(tmp_path, attn, packed):
    """attn_implementation flash_attention_2 (padded, or packed with padding_free) and flex_attention
    (packed) against sdpa padded."""
    runs = {}
    for name in ("sdpa", attn):
        model, examples, _ = tiny_on("cuda", tmp_path / name, attn_implementation=name, lora_dropout=0.0,
                                     padding_free=packed and name == attn)
        model.train()
        runs[name] = cached_loss(model, features_on(model, columns(examples[:12]), "cuda"))
    tol = tolerance(model)
    assert torch.allclose(runs[attn][0], runs["sdpa"][0], rtol=tol, atol=0)
    assert_same_gradients(runs[attn][1], runs["sdpa"][1], rel=tol)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@installed("liger_kernel")
def test_liger_kernels_keep_loss_and_gradients(tmp_path, monkeypatch):
    from transformers.models.mistral import modeling_mistral

    for name in ("apply_rotary_pos_emb", "MistralRMSNorm", "MistralMLP"):  # liger replaces these: put them back after
        monkeypatch.setattr(modeling_mistral, name, getattr(modeling_mistral, name))
    runs = {}
    for liger in (False, True):  # the reference first: liger's RoPE patch reaches every Mistral
        model, examples, _ = tiny_on("cuda", tmp_path / str(liger), liger_kernels=liger, lora_dropout=0.0)
        model.train()
        runs[liger] = cached_loss(model, features_on(model, columns(examples[:12]), "cuda"))
    tol = tolerance(model)
    assert torch.allclose(runs[True][0], runs[False][0], rtol=tol, atol=0)
    assert_same_gradients(runs[True][1], runs[False][1], rel=tol)


@pytest.mark.parametrize("device", DEVICES)
def test_lora_input_cast_off_keeps_bf16_inputs_and_the_loss_and_gradients(device, tmp_path):
    """`lora_cast_input: false` (peft.helpers.disable_input_dtype_casting for the whole run): in bf16
    weights and bf16 mixed precision, each LoRA layer takes its input in bf16 instead of peft's
    float32 copy; the loss and gradients stay those of the cast within bf16's tolerance."""
    runs, seen = {}, {}
    for cast in (True, False):
        model, examples, _ = tiny_on(device, tmp_path / str(cast), "bf16", dtype="bfloat16", lora_cast_input=cast,
                                     lora_dropout=0.0)
        dtypes = seen.setdefault(cast, set())
        for name, module in model.named_modules():
            if name.endswith("lora_A.default"):
                module.register_forward_pre_hook(lambda module, args, dtypes=dtypes: dtypes.add(args[0].dtype))
        model.train()
        runs[cast] = cached_loss(model, features_on(model, columns(examples[:12]), device))
    assert seen == {True: {torch.float32}, False: {torch.bfloat16}}
    tol = tolerance(model)
    assert torch.allclose(runs[True][0], runs[False][0], rtol=tol, atol=0)
    assert_same_gradients(runs[False][1], runs[True][1], rel=tol)


def test_lora_input_cast_off_needs_mixed_precision():
    from recipe.config import ConfigError

    with pytest.raises(ConfigError, match="'lora_cast_input' false needs mixed_precision bf16 or fp16"):
        smoke_config(dtype="bfloat16", mixed_precision="no", lora_cast_input=False).check()
    smoke_config(dtype="bfloat16", mixed_precision="bf16", lora_cast_input=False).check()


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_the_benchmarked_step_autocasts_the_model_alone_and_computes_the_loss_in_float32(dtype, tmp_path,
                                                                                       monkeypatch):
    """benchmarks/train_throughput.py (and so the GPU suite) times train.py's step in bf16 mixed
    precision: the model's projections run in bf16 under autocast, whatever the weights' dtype,
    and the InfoNCE scores are computed in float32, as accelerate hands the loss float32 outputs."""
    from recipe.train import loss as loss_module

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import train_throughput as tt

    cfg = replace(smoke_config(), dtype=dtype, mixed_precision="bf16", mini_batch_size=4, max_length=48)
    batches = tt.make_batches(cfg, 8, 1)
    model, loss_fn = tt.make_model(tt.run_cfg("grouped", cfg), torch.device("cpu"), tmp_path,
                                   tt.tokenizer_texts(batches))
    scores, projections = set(), set()
    cos_sim = loss_module.cos_sim
    monkeypatch.setattr(loss_module, "cos_sim", lambda a, b: (lambda s: scores.add(s.dtype) or s)(cos_sim(a, b)))
    q_proj = model[0].auto_model.base_model.model.layers[0].self_attn.q_proj.base_layer
    q_proj.register_forward_hook(lambda module, args, out: projections.add(out.dtype))
    rows = tt.run("grouped", cfg, model, loss_fn, batches, baseline="loop")
    assert rows and scores == {torch.float32} and projections == {torch.bfloat16}, (scores, projections)
