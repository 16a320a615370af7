"""Training checkpoint → echoic model directory (frontend + student encoder, no training state)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from echoic.checkpoint import EchoicModel, ModelConfig, save
from echoic.config import from_dict
from echoic.errors import CheckpointError
from echoic.objectives import OBJECTIVES, build_objective

__all__ = ["ENCODER_PREFIX", "export_checkpoint", "export_state"]

ENCODER_PREFIX = "objective.encoder."
FRONTEND_PREFIX = "frontend."


def export_state(
    state_dict: dict[str, torch.Tensor],
    model_config: ModelConfig,
    directory: str | os.PathLike[str],
    step: int,
    data_hash: str | None,
    provenance: dict[str, Any] | None = None,
) -> Path:
    """Write the encoder (keys ``objective.encoder.*``) and frontend buffers of a training
    ``state_dict`` as a model directory loadable by :func:`echoic.load`."""
    model = EchoicModel(model_config)
    encoder = {
        k[len(ENCODER_PREFIX) :]: v for k, v in state_dict.items() if k.startswith(ENCODER_PREFIX)
    }
    if not encoder:
        raise CheckpointError(
            f"no encoder weights (keys {ENCODER_PREFIX}*) in the training state; expected a "
            "checkpoint written by echoic pretrain."
        )
    model.encoder.load_state_dict(encoder, strict=True)
    frontend = {
        k[len(FRONTEND_PREFIX) :]: v for k, v in state_dict.items() if k.startswith(FRONTEND_PREFIX)
    }
    if frontend:
        model.frontend.load_state_dict(frontend, strict=True)
    return save(
        model.cpu(),
        directory,
        step=int(step),
        objective=model_config.objective,
        data_hash=data_hash,
        untrained=False,
        provenance={"origin": "echoic pretrain", **(provenance or {})},
    )


def export_checkpoint(
    checkpoint_path: str | os.PathLike[str], directory: str | os.PathLike[str]
) -> Path:
    """Export a ``.ckpt`` written by ``echoic pretrain`` to a model directory."""
    path = Path(checkpoint_path)
    if not path.is_file():
        raise CheckpointError(
            f"{path}: no such checkpoint file; expected a .ckpt from echoic pretrain."
        )
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    state = ckpt.get("echoic")
    if state is None or "state_dict" not in ckpt:
        raise CheckpointError(
            f"{path}: not an echoic pretraining checkpoint (no 'echoic' entry); export it with the "
            "tool that wrote it."
        )
    model_config = from_dict(ModelConfig, state["model_config"], where=str(path))
    config = state["config"]
    out = export_state(
        ckpt["state_dict"],
        model_config,
        directory,
        step=int(ckpt.get("global_step", 0)),
        data_hash=state.get("data_hash"),
        provenance={
            "checkpoint": path.name,
            "seed": config.get("seed"),
            "objective_config": config.get("objective", {}),
            "data": config.get("data", {}).get("train", []),
        },
    )
    name = model_config.objective
    if name in OBJECTIVES.names() and OBJECTIVES.get(name).saves_beside_model:
        save_beside(ckpt["state_dict"], model_config, config.get("objective", {}), out)
    return out


def save_beside(
    state_dict: dict[str, torch.Tensor],
    model_config: ModelConfig,
    objective: dict[str, Any],
    directory: Path,
) -> list[str]:
    """Rebuild the objective of a training ``state_dict`` and let it write its files beside the
    exported model (``Objective.save_beside_model``: e.g. a text tower and projection heads)."""
    assert model_config.objective is not None
    encoder = EchoicModel(model_config).encoder
    built = build_objective(model_config.objective, encoder, objective.get("config") or {})
    prefix = "objective."
    built.load_state_dict(
        {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}, strict=True
    )
    return built.save_beside_model(directory)
