"""Random checkpoints in the public key layouts of AudioMAE, EAT and M2D, saved as their
repositories save them (names and shapes read from facebookresearch/AudioMAE ``models_mae.py``,
cwx-worst-one/EAT ``models/*.py`` + fairseq's checkpoint dict, nttcslab/m2d ``portable_m2d.py`` +
``patch_m2d.diff``'s ``models_mae.py``), and the first block computed by hand.

No PyPI package runs these models, so the converters are checked for self-consistency: the tiny
random weights below go through the converter, and the converted encoder's layer 0 and layer 1 are
recomputed here from the *source* tensors with explicit operations (a ``conv2d`` on the image the
source feeds, its own token order, LayerNorm → qkv → softmax attention → proj → MLP).
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import torch
import torch.nn.functional as F

DIM, DEPTH, MLP = 128, 2, 256
"""A tiny width whose timm head count (dim / 64) is 2 (EAT's heads come from its cfg: 4)."""
EAT_HEADS = 4


def _block(prefix: str, g: torch.Generator, dim: int = DIM, hidden: int = MLP) -> dict:
    def r(*shape: int, scale: float = 0.2) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * scale

    return {
        f"{prefix}.norm1.weight": 1 + r(dim),
        f"{prefix}.norm1.bias": r(dim),
        f"{prefix}.attn.qkv.weight": r(3 * dim, dim, scale=dim**-0.5),
        f"{prefix}.attn.qkv.bias": r(3 * dim),
        f"{prefix}.attn.proj.weight": r(dim, dim, scale=dim**-0.5),
        f"{prefix}.attn.proj.bias": r(dim),
        f"{prefix}.norm2.weight": 1 + r(dim),
        f"{prefix}.norm2.bias": r(dim),
        f"{prefix}.mlp.fc1.weight": r(hidden, dim, scale=dim**-0.5),
        f"{prefix}.mlp.fc1.bias": r(hidden),
        f"{prefix}.mlp.fc2.weight": r(dim, hidden, scale=hidden**-0.5),
        f"{prefix}.mlp.fc2.bias": r(dim),
    }


def timm_vit(n_patches: int, seed: int, decoder: bool = True) -> dict[str, torch.Tensor]:
    """A timm ``VisionTransformer`` + MAE decoder state dict (AudioMAE's ``MaskedAutoencoderViT``,
    M2D's ``M2DViT`` encoder part) with ``n_patches`` positions after the CLS row."""
    g = torch.Generator().manual_seed(seed)
    state = {
        "cls_token": torch.randn(1, 1, DIM, generator=g),
        "pos_embed": torch.randn(1, 1 + n_patches, DIM, generator=g),
        "patch_embed.proj.weight": torch.randn(DIM, 1, 16, 16, generator=g) / 16,
        "patch_embed.proj.bias": torch.randn(DIM, generator=g) * 0.1,
        "norm.weight": 1 + torch.randn(DIM, generator=g) * 0.1,
        "norm.bias": torch.randn(DIM, generator=g) * 0.1,
    }
    for i in range(DEPTH):
        state.update(_block(f"blocks.{i}", g))
    if decoder:  # pretraining leftovers the converters drop
        state["mask_token"] = torch.randn(1, 1, 64, generator=g)
        state["decoder_embed.weight"] = torch.randn(64, DIM, generator=g)
        state["decoder_embed.bias"] = torch.zeros(64)
        state["decoder_pos_embed"] = torch.randn(1, 1 + n_patches, 64, generator=g)
        state.update(_block("decoder_blocks.0", g, 64, 128))
        state["decoder_norm.weight"] = torch.ones(64)
        state["decoder_norm.bias"] = torch.zeros(64)
        state["decoder_pred.weight"] = torch.randn(256, 64, generator=g)
        state["decoder_pred.bias"] = torch.zeros(256)
    return state


def mae_training_dump(state: dict[str, torch.Tensor]) -> dict:
    """What MAE's ``misc.save_model`` writes (AudioMAE and M2D training checkpoints)."""
    return {
        "model": state,
        "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]},
        "epoch": 3,
        "scaler": {"scale": 65536.0, "growth_factor": 2.0},
        "args": argparse.Namespace(model="mae_vit_base_patch16", norm_pix_loss=False),
    }


def save_audiomae(path: Path, n_time: int = 6, seed: int = 0) -> dict[str, torch.Tensor]:
    """``pretrained.pth`` of a tiny AudioMAE (8 frequency × ``n_time`` patches)."""
    state = timm_vit(8 * n_time, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(mae_training_dump(state), path)
    return state


def save_m2d(path: Path, n_time: int = 6, seed: int = 1, training: bool = True) -> dict:
    """A tiny M2D: a training ``checkpoint-*.pth`` (decoder, target encoder, ``norm_stats``) or
    an encoder-only ``weights_*.pth`` (the backbone's bare state dict)."""
    state = timm_vit(5 * n_time, seed, decoder=training)
    state["norm_stats"] = torch.tensor([-6.5, 4.5])
    if training:
        g = torch.Generator().manual_seed(seed + 10)
        for i in range(DEPTH):
            state.update(_block(f"target_blocks.{i}", g))
        state["target_norm.weight"] = torch.ones(DIM)
        state["target_norm.bias"] = torch.zeros(DIM)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(mae_training_dump(state) if training else state, path)
    return state


IMAGE = "modality_encoders.IMAGE."


def eat_model_state(n_time: int = 6, seed: int = 2) -> dict[str, torch.Tensor]:
    """``Data2VecMultiModel.state_dict()`` of a tiny EAT (no ``_ema``)."""
    g = torch.Generator().manual_seed(seed)
    state = {
        f"{IMAGE}local_encoder.proj.weight": torch.randn(DIM, 1, 16, 16, generator=g) / 16,
        f"{IMAGE}local_encoder.proj.bias": torch.randn(DIM, generator=g) * 0.1,
        f"{IMAGE}fixed_positional_encoder.positions": torch.randn(1, 8 * n_time, DIM, generator=g),
        f"{IMAGE}extra_tokens": torch.randn(1, 1, DIM, generator=g),
        f"{IMAGE}context_encoder.norm.weight": 1 + torch.randn(DIM, generator=g) * 0.1,
        f"{IMAGE}context_encoder.norm.bias": torch.randn(DIM, generator=g) * 0.1,
        f"{IMAGE}decoder.blocks.0.0.weight": torch.randn(DIM, 1, 3, 3, generator=g),
        f"{IMAGE}decoder.proj.weight": torch.randn(DIM, DIM, generator=g),
    }
    for i in range(DEPTH):
        state.update(_block(f"blocks.{i}", g))
    return state


def save_eat(path: Path, state: dict[str, torch.Tensor], finetuned: bool = False) -> None:
    """A fairseq checkpoint of ``state`` as EAT's trainer writes it: ``cfg`` (a plain dict),
    the model with its EMA teacher (``_ema``: a nested dict), and training state holding
    ``collections.defaultdict``s. ``finetuned``: ``MaeImageClassificationModel``'s layout."""
    model = collections.OrderedDict(state)
    cfg = {"_name": "data2vec_multi", "depth": DEPTH, "num_heads": EAT_HEADS, "norm_eps": 1e-6}
    if finetuned:
        model = collections.OrderedDict((f"model.{k}", v) for k, v in state.items())
        model["fc_norm.weight"], model["fc_norm.bias"] = torch.ones(DIM), torch.zeros(DIM)
        model["head.weight"], model["head.bias"] = torch.zeros(527, DIM), torch.zeros(527)
        cfg = {"_name": "mae_image_classification", "model": cfg}
    else:
        model["_ema"] = {k: v.clone() for k, v in state.items() if k.startswith("blocks.")}
    meters = collections.defaultdict(list, {"loss": [1.5, 1.2], "ema_decay": [999.8]})
    dump = {
        "cfg": {"model": cfg, "task": {"_name": "mae_image_pretraining"}},
        "args": None,
        "model": model,
        "criterion": None,
        "optimizer_history": [{"criterion_name": "ModelCriterion", "num_updates": 10}],
        "task_state": {},
        "extra_state": {"metrics": meters, "previous_best": 0.5, "train_iterator": {"epoch": 2}},
        "last_optimizer_state": {"loss_scale": 128.0},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(dump, path)


# ---------------------------------------------------------------- the first block, by hand
def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + 1e-6) * weight + bias


def attention(x: torch.Tensor, state: dict, prefix: str, heads: int) -> torch.Tensor:
    """timm's attention: one qkv projection split ``(3, heads, head_dim)``, softmax, proj."""
    n, dim = x.shape
    qkv = x @ state[f"{prefix}.qkv.weight"].T + state[f"{prefix}.qkv.bias"]
    q, k, v = qkv.reshape(n, 3, heads, dim // heads).permute(1, 2, 0, 3)
    weights = torch.softmax(q @ k.transpose(-1, -2) / (dim // heads) ** 0.5, dim=-1)
    mixed = (weights @ v).transpose(0, 1).reshape(n, dim)
    return mixed @ state[f"{prefix}.proj.weight"].T + state[f"{prefix}.proj.bias"]


def mlp(x: torch.Tensor, state: dict, prefix: str) -> torch.Tensor:
    hidden = F.gelu(x @ state[f"{prefix}.fc1.weight"].T + state[f"{prefix}.fc1.bias"])
    return hidden @ state[f"{prefix}.fc2.weight"].T + state[f"{prefix}.fc2.bias"]


def pre_ln_block(x: torch.Tensor, state: dict, heads: int) -> torch.Tensor:
    """timm ``Block`` 0: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""
    b = "blocks.0"
    x = x + attention(
        layer_norm(x, state[f"{b}.norm1.weight"], state[f"{b}.norm1.bias"]),
        state,
        f"{b}.attn",
        heads,
    )
    return x + mlp(
        layer_norm(x, state[f"{b}.norm2.weight"], state[f"{b}.norm2.bias"]), state, f"{b}.mlp"
    )


def post_ln_block(x: torch.Tensor, state: dict, heads: int) -> torch.Tensor:
    """data2vec 2.0 ``AltBlock`` 0 with ``layer_norm_first=False``."""
    b = "blocks.0"
    x = layer_norm(
        x + attention(x, state, f"{b}.attn", heads),
        state[f"{b}.norm1.weight"],
        state[f"{b}.norm1.bias"],
    )
    return layer_norm(
        x + mlp(x, state, f"{b}.mlp"), state[f"{b}.norm2.weight"], state[f"{b}.norm2.bias"]
    )


def patch_tokens(image: torch.Tensor, kernel: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``Conv2d(1, D, 16, stride 16)`` on a ``(H, W)`` image → ``(H/16 · W/16, D)`` tokens in
    ``flatten(2)`` order (row-major over the image's own axes)."""
    maps = F.conv2d(image[None, None], kernel, bias, stride=16)
    return maps.flatten(2)[0].T
