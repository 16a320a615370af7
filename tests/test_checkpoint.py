import json

import pytest
import torch

import echoic
from echoic.checkpoint import CONFIG_FILE, WEIGHTS_FILE, load, read_config, save
from echoic.data.batch import pad_batch
from echoic.errors import CheckpointError, ConfigError


def _outputs(model, make_tone):
    batch = pad_batch([torch.from_numpy(make_tone(1.3)), torch.from_numpy(make_tone(0.7))], 16000)
    with torch.no_grad():
        return model(batch)


def test_save_load_round_trip_gives_identical_outputs(tmp_path, tiny_model, make_tone):
    save(tiny_model, tmp_path / "m")
    assert (tmp_path / "m" / WEIGHTS_FILE).is_file()
    raw = json.loads((tmp_path / "m" / CONFIG_FILE).read_text())
    assert raw["format_version"] == 1 and raw["echoic_version"] == echoic.__version__
    assert raw["model"]["encoder"] == "vit_test"
    assert raw["model"]["frontend_config"]["n_mels"] == tiny_model.frontend.n_bins
    loaded = load(tmp_path / "m")
    a, b = _outputs(tiny_model, make_tone), _outputs(loaded, make_tone)
    for x, y in zip(a.layers, b.layers, strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_save_updates_recorded(tmp_path, tiny_model):
    save(tiny_model, tmp_path / "m", step=123, objective="mae", data_hash="abc")
    cfg = read_config(tmp_path / "m")
    assert (cfg.step, cfg.objective, cfg.data_hash) == (123, "mae", "abc")


def test_unknown_config_key_names_nearest(tmp_path, tiny_model):
    save(tiny_model, tmp_path / "m")
    path = tmp_path / "m" / CONFIG_FILE
    raw = json.loads(path.read_text())
    raw["model"]["encodr"] = raw["model"].pop("encoder")
    path.write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match="'encoder'"):
        load(tmp_path / "m")


def test_unknown_weight_key_names_nearest(tmp_path, tiny_model):
    from safetensors.torch import load_file, save_file

    save(tiny_model, tmp_path / "m")
    state = load_file(str(tmp_path / "m" / WEIGHTS_FILE))
    key = next(k for k in state if k.startswith("encoder."))
    state[key + "x"] = state.pop(key)
    save_file(state, str(tmp_path / "m" / WEIGHTS_FILE))
    with pytest.raises(CheckpointError, match=f"Did you mean '{key}'"):
        load(tmp_path / "m")


def test_format_version_and_missing_files(tmp_path, tiny_model):
    save(tiny_model, tmp_path / "m")
    path = tmp_path / "m" / CONFIG_FILE
    raw = json.loads(path.read_text())
    raw["format_version"] = 99
    path.write_text(json.dumps(raw))
    with pytest.raises(CheckpointError, match="format_version 99"):
        load(tmp_path / "m")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"config\.json"):
        load(tmp_path / "empty")


def test_unknown_model_name_suggests():
    with pytest.raises(CheckpointError, match="echoic-default"):
        load("echoic-defualt")


def test_untrained_tiny_is_labelled_and_deterministic():
    a, b = load("echoic-untrained-tiny"), load("echoic-untrained-tiny")
    assert a.config.untrained and "UNTRAINED" in a.label
    assert a.config.encoder == "vit_tiny"
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)


def test_default_model_is_the_bundled_trained_echoic_small():
    from echoic.checkpoint import BUNDLED_DIR

    for name in ("echoic-tiny", "echoic-small"):
        weights = BUNDLED_DIR / name / "model.safetensors"
        assert weights.is_file() and weights.stat().st_size <= 25 * 2**20  # inside the package
        assert name in echoic.list_models()
    default, small = load("echoic-default"), load("echoic-small")
    assert "echoic-default" in echoic.list_models()
    assert not default.config.untrained and "UNTRAINED" not in default.label
    assert default.config.name == "echoic-small" and default.config.objective == "byol_a"
    assert default.config.data_hash and default.config.step == 7000
    assert default.config.embed == {"scene_pool": "mean+max"}
    for (ka, va), (kb, vb) in zip(
        default.state_dict().items(), small.state_dict().items(), strict=True
    ):
        assert ka == kb and torch.equal(va, vb)
    tiny = load("echoic-tiny")  # the previous default, still bundled
    assert tiny.config.objective == "eat" and tiny.config.step > 0
    embed = {"layer": -1, "freq_pool": "concat", "chunk_s": 2.56, "overlap_s": 0.64}
    assert tiny.config.embed == embed
    assert echoic.Embedder(tiny).config.chunk_s == 2.56  # the recommendation is applied
    untrained = load("echoic-untrained-tiny").state_dict()
    name = "encoder.patch_embed.proj.weight"
    assert not torch.equal(tiny.state_dict()[name], untrained[name])  # really trained
