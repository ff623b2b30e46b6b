"""`merge_checkpoints`: final/ holds the merge of a run's last N checkpoints, not its last step.

Qwen3-Embedding merges checkpoints with SLERP after fine-tuning (68.2 -> 70.7 on MTEB(eng, v2)
for its 0.6B model). Neither sentence-transformers nor peft merges checkpoints of one run: peft's
`add_weighted_adapter` combines named adapters (no SLERP, and full fine-tuning has no adapter),
so this is ours, on the checkpoints `checkpoint.py` writes (trainable weights only):

- what is merged is each trained weight as the model uses it: a parameter of a full fine-tune,
  or base + LoRA delta (`get_delta_weight`: B A x alpha / r) of each adapted layer, so that the
  average of LoRA checkpoints is the average of the models, not of their A and B factors;
- `average`: the mean; `spherical`: SLERP along the great circle between two tensors (the
  norms interpolated along it, as mergekit's `slerp`), folded over N checkpoints with weight
  1 / i for the i-th, which is the mean when the tensors are parallel;
- LoRA: the merged weights go into the base layers and every B is zeroed, so the adapter adds
  nothing and the export's `merge_and_unload` leaves them as they are.
"""

from __future__ import annotations

from pathlib import Path

import torch


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """The point a fraction `t` of the way from `a` to `b` along the arc between their directions."""
    a64, b64 = a.double().flatten(), b.double().flatten()
    norms = a64.norm() * b64.norm()
    # a zero tensor (a bias no step moved from its zero init) has no direction: the arc is
    # undefined and the division would be 0/0, so it is the chord, as for parallel tensors
    if norms < 1e-30:
        return torch.lerp(a.double(), b.double(), t).to(a.dtype)
    cos = (torch.dot(a64, b64) / norms).clamp(-1.0, 1.0)
    theta = torch.arccos(cos)
    if torch.sin(theta) < 1e-6:  # parallel: the arc is the chord
        return torch.lerp(a.double(), b.double(), t).to(a.dtype)
    s = torch.sin(theta)
    out = (torch.sin((1 - t) * theta) / s) * a.double() + (torch.sin(t * theta) / s) * b.double()
    return out.to(a.dtype)


def combine(tensors: list[torch.Tensor], method: str) -> torch.Tensor:
    if method == "average":
        return torch.stack([t.double() for t in tensors]).mean(0).to(tensors[0].dtype)
    merged = tensors[0]
    for i, t in enumerate(tensors[1:], start=2):
        merged = slerp(merged, t, 1.0 / i)
    return merged


def load_weights(paths: list[Path]) -> list[dict[str, torch.Tensor]]:
    return [torch.load(Path(p) / "state.pt", map_location="cpu", weights_only=False)["weights"] for p in paths]


@torch.no_grad()
def merge_into(model, paths: list[Path], method: str) -> None:
    """Set `model`'s weights (the unwrapped SentenceTransformer) to the merge of the checkpoints at
    `paths`, whose weights are named as `model.named_parameters()` names them."""
    from peft.tuners.lora import LoraLayer

    states = load_weights(paths)
    params = dict(model.named_parameters())
    adapted = {name: module for name, module in model.named_modules()
               if isinstance(module, LoraLayer) and "default" in module.lora_A}
    for name, layer in adapted.items():
        a_name, b_name = f"{name}.lora_A.default.weight", f"{name}.lora_B.default.weight"
        base = layer.get_base_layer().weight
        weights = []
        for state in states:
            params[a_name].copy_(state[a_name])
            params[b_name].copy_(state[b_name])
            weights.append(base.float() + layer.get_delta_weight("default").float())
        base.copy_(combine(weights, method))
        params[b_name].zero_()
    lora_names = {f"{name}.lora_{ab}.default.weight" for name in adapted for ab in "AB"}
    for name in states[0].keys() - lora_names:
        params[name].copy_(combine([state[name] for state in states], method))
