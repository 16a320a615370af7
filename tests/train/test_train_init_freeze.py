"""``model.init`` (start the encoder from a model's weights) and ``model.freeze_encoder`` (train
only the objective's heads): checked architecture and features, untouched exported encoder,
heads that do move, and an encoder that stays in eval mode."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from echoic.checkpoint import EchoicModel, ModelConfig, save
from echoic.errors import ConfigError
from echoic.objectives.joint import HEADS_FILE
from echoic.train.config import load_config
from echoic.train.module import PretrainModule
from echoic.train.run import pretrain

SR = 16000


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four captioned tones as ``echoic corpus build`` lays them out."""
    root = tmp_path_factory.mktemp("tones")
    rows, captions = [], []
    for i in range(4):
        n = SR
        x = 0.3 * np.sin(2 * np.pi * (200 + 150 * i) * np.arange(n) / SR)
        sf.write(root / f"c{i}.wav", x.astype(np.float32), SR)
        rows.append(f"c{i}.wav,tones,1.0,{SR},,test\n")
        captions.append(f"c{i}.wav,tones,train,g{i},a tone of {200 + 150 * i} hertz,en,generated\n")
    (root / "manifest.csv").write_text(
        "file,source,duration_s,sample_rate,sha256,origin\n" + "".join(rows)
    )
    (root / "captions.csv").write_text(
        "file,source,split,group,caption,caption_lang,caption_kind\n" + "".join(captions)
    )
    return root


@pytest.fixture(scope="module")
def start(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 'pretrained' vit_test model directory (seeded random weights)."""
    torch.manual_seed(7)
    return save(
        EchoicModel(ModelConfig(encoder="vit_test", frontend="kaldi_fbank")),
        tmp_path_factory.mktemp("start") / "model",
    )


def overrides(out: Path, corpus: Path, start: Path, **model: object) -> list[str]:
    return [
        f"--output_dir={out}",
        "--model.encoder=vit_test",
        f"--model.init={start}",
        *(f"--model.{k}={json.dumps(v)}" for k, v in model.items()),
        "--objective.name=collap",
        '--objective.config={"text": "text_test", "dim": 16, "hidden": 32, "chunk_s": 0.25}',
        f"--data.train=[{corpus}]",
        "--data.captions=true",
        "--data.crop_s=0.5",
        "--data.batch_size=4",
        "--data.num_workers=0",
        "--optim.lr=1e-2",
        "--optim.warmup_steps=1",
        "--trainer.max_steps=3",
        "--trainer.progress_bar=false",
        "--trainer.tensorboard=false",
    ]


def test_init_loads_the_weights_and_checks_architecture_and_features(
    tmp_path: Path, corpus: Path, start: Path
) -> None:
    module = PretrainModule(load_config(None, overrides(tmp_path / "a", corpus, start)))
    given = load_file(str(start / "model.safetensors"))
    for key, value in module.objective.encoder.state_dict().items():
        assert torch.equal(value, given[f"encoder.{key}"]), key
    assert all(p.requires_grad for p in module.objective.encoder.parameters())  # not frozen
    other_stats = overrides(tmp_path / "b", corpus, start, frontend_config={"mean": -4.0})
    with pytest.raises(ConfigError, match=r"settings that differ: \['mean'\]"):
        PretrainModule(load_config(None, other_stats))
    wider = overrides(tmp_path / "c", corpus, start, encoder_config={"dim": 48})
    with pytest.raises(ConfigError, match="another encoder"):
        PretrainModule(load_config(None, wider))


def test_a_frozen_encoder_is_exported_unchanged_while_the_heads_train(
    tmp_path: Path, corpus: Path, start: Path
) -> None:
    torch.set_num_threads(1)
    config = load_config(None, overrides(tmp_path / "run", corpus, start, freeze_encoder=True))
    module = PretrainModule(config)
    encoder = module.objective.encoder
    assert not any(p.requires_grad for p in encoder.parameters())
    assert not module.train().objective.encoder.training  # eval mode, whatever the trainer asks
    assert module.objective.audio_head.training
    optimised = {
        id(p) for g in module.configure_optimizers()["optimizer"].param_groups for p in g["params"]
    }  # type: ignore[index]
    assert optimised and not optimised & {id(p) for p in encoder.parameters()}
    before = {k: v.clone() for k, v in module.objective.audio_head.state_dict().items()}
    result = pretrain(config)
    assert result.export_dir is not None
    exported = load_file(str(result.export_dir / "model.safetensors"))
    given = load_file(str(start / "model.safetensors"))
    assert exported.keys() == given.keys()
    assert all(torch.equal(exported[k], given[k]) for k in given)
    heads = load_file(str(result.export_dir / HEADS_FILE))
    assert any(not torch.equal(heads[f"audio.0.{k}"], v) for k, v in before.items())
