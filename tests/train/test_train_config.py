"""Recipes, overrides, the LR schedule and optimiser parameter groups."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from echoic.config import from_dict
from echoic.embed.embedder import EmbedConfig
from echoic.encoders import ENCODERS, build_encoder
from echoic.errors import ConfigError
from echoic.features.base import build_frontend
from echoic.objectives import OBJECTIVES, build_objective
from echoic.train.config import PretrainConfig, load_config, parse_overrides, read_yaml
from echoic.train.module import cosine_with_warmup, parameter_groups
from echoic.train.run import resolve_precision

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
RECIPES = sorted((CONFIGS / "pretrain").glob("*.yaml"))
MODEL_RECIPES = sorted((CONFIGS / "models").glob("*.yaml"))  # recipes of shipped models


def test_a_recipe_per_method_and_size() -> None:
    names = {p.stem for p in RECIPES}
    for method in ("mae", "eat", "ssast"):
        assert {f"{method}_test", f"{method}_small", f"{method}_base"} <= names


@pytest.mark.parametrize("recipe", RECIPES + MODEL_RECIPES, ids=lambda p: p.stem)
def test_every_recipe_is_valid(recipe: Path) -> None:
    config = load_config(recipe)
    assert config.model.encoder in ENCODERS
    objective_class = OBJECTIVES.get(config.objective.name)
    from_dict(objective_class.config_class, config.objective.config)  # raises on unknown keys
    frontend = build_frontend(config.model.frontend, config.model.frontend_config)
    assert frontend.n_bins == ENCODERS.get(config.model.encoder)().spec().n_bins
    if recipe in MODEL_RECIPES:  # named after the model it trains
        assert config.model.name == recipe.stem
        from_dict(EmbedConfig, config.model.embed)  # the recommended embedding settings parse
    else:
        # <method>_<size> trains vit_<size>, wav_<size> (waveform methods: data2vec2, wavjepa) or
        # the method's own encoder family at that size (byol_a_test: byol_a_test; byol_a_tiny:
        # byol_a); <method>_<encoder> (e.g. eat_wav_test) that encoder
        method = config.objective.name
        stem = recipe.stem.removesuffix("_fsdp")  # eat_base_fsdp: eat_base on FSDP + bf16
        if config.stages:  # <method>_iter[_<size>]: an iteration recipe (default size: tiny)
            stem = stem.replace("_iter", "", 1)
            stem = stem if stem != method else f"{method}_tiny"
            check_stages(config)
        assert stem.startswith(method + "_")
        # variants <method>_mono_<size> (the mono control), <method>_patchout_<size> (PaSST),
        # <method>_foa_<size> (first-order ambisonic input)
        rest = stem[len(method) + 1 :]
        for variant in ("mono_", "patchout_", "foa_"):
            rest = rest.removeprefix(variant)
        if stem.startswith(f"{method}_foa_"):
            assert config.model.frontend_config["channels"] == 4
        if stem.startswith(f"{method}_mono_"):
            assert config.model.frontend_config.get("channels", 1) == 1
        if stem.startswith(f"{method}_patchout_"):
            assert config.model.encoder_config["patchout"]
        if rest in ENCODERS:
            assert config.model.encoder == rest
        else:
            own = {f"{method}_{rest}", method} if rest != "test" else {f"{method}_{rest}"}
            sized = {"vit_" + rest, "wav_" + rest}
            assert config.model.encoder in sized | (own & set(ENCODERS.names()))
    assert isinstance(config.optim.lr, float)


def check_stages(config: PretrainConfig) -> None:
    """Every stage of an iteration recipe resolves to a valid run or tokenizer fit."""
    from echoic.tokenizers import TOKENIZERS
    from echoic.train.stages import stage_configs

    for stage in stage_configs(config).values():
        if isinstance(stage, PretrainConfig):
            objective_class = OBJECTIVES.get(stage.objective.name)
            from_dict(objective_class.config_class, stage.objective.config)
        else:
            from_dict(TOKENIZERS.get(stage.name).config_class, stage.config)


def test_overrides_parse_values_as_yaml() -> None:
    parsed = parse_overrides(
        ["--optim.lr", "1e-4", "--data.train=[a, b]", "--trainer.devices", "2", "--export_dir=null"]
    )
    assert parsed == {
        "optim.lr": 1e-4,
        "data.train": ["a", "b"],
        "trainer.devices": 2,
        "export_dir": None,
    }
    config = load_config(None, parsed)
    assert config.optim.lr == 1e-4 and config.data.train == ("a", "b")
    assert read_yaml("x: 5e-4")["x"] == 5e-4  # YAML 1.1 would give the string '5e-4'


def test_nested_objective_overrides_and_unknown_keys(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("objective: {name: eat, config: {clone_batch: 4}}\noptim: {lr: 1.0e-3}\n")
    config = load_config(recipe, ["--objective.config.mask_ratio", "0.7"])
    assert config.objective.config == {"clone_batch": 4, "mask_ratio": 0.7}
    with pytest.raises(ConfigError, match="'warmup_steps'"):
        load_config(recipe, ["--optim.warmup_step", "3"])
    with pytest.raises(ConfigError, match="no value"):
        parse_overrides(["--optim.lr"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_config_checks_values() -> None:
    with pytest.raises(ConfigError, match="pad"):
        from_dict(PretrainConfig, {"data": {"pad": "reflect"}})
    with pytest.raises(ConfigError, match="crop_s"):
        from_dict(PretrainConfig, {"data": {"crop_s": 0}})


def test_cosine_with_warmup() -> None:
    f = cosine_with_warmup(warmup=4, total=14, min_ratio=0.1)
    assert [f(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert math.isclose(f(9), 0.1 + 0.9 * 0.5)  # half-way through the cosine
    assert math.isclose(f(14), 0.1) and math.isclose(f(100), 0.1)


def test_parameter_groups_skip_decay_for_vectors_and_teachers() -> None:
    torch.manual_seed(0)
    objective = build_objective("eat", build_encoder("vit_test"), {"decoder_dim": 32})
    decay, no_decay = parameter_groups(objective, 0.05)
    ids = {id(p) for p in decay["params"]} | {id(p) for p in no_decay["params"]}
    assert not ids & {id(p) for p in objective.ema.parameters()}
    assert ids == {id(p) for p in objective.parameters() if p.requires_grad}
    no_decay_ids = {id(p) for p in no_decay["params"]}
    assert id(objective.encoder.cls_token) in no_decay_ids
    assert id(objective.encoder.norm.weight) in no_decay_ids
    assert id(objective.encoder.blocks[0].attn.qkv.weight) not in no_decay_ids
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0


def test_precision_is_fp32_on_cpu() -> None:
    assert resolve_precision("auto", "cpu") == "32-true"
    assert resolve_precision("bf16-mixed", "cpu") == "bf16-mixed"
    if not torch.cuda.is_available():
        assert resolve_precision("auto", "auto") == "32-true"
