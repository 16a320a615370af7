"""``dasheng``: Dasheng checkpoints (``{"model", "config"}`` as ``Dasheng.from_pretrained`` reads
them), converted, give every layer of dasheng 0.0.9 from the waveform on real clips — its
torchaudio frontend and input BatchNorm included (max |diff| <= 1e-4; ``-s`` prints the maxima).
"""

from __future__ import annotations

import pytest
import torch
from convert_helpers import layer_diffs
from spectrogram_reference import dasheng_module, hooked_layers, make_dasheng

from echoic.checkpoint import load_dir, read_config
from echoic.convert import ConversionError, convert, detect
from echoic.encoders import build_encoder
from echoic.encoders.dasheng import DASHENG_SIZES
from echoic.types import AudioBatch

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def dasheng():
    return dasheng_module()


@pytest.fixture(scope="module")
def checkpoint(dasheng, tmp_path_factory):
    """(checkpoint file, the reference as from_pretrained loads it, converted directory)."""
    model = make_dasheng(dasheng)
    file = tmp_path_factory.mktemp("dasheng") / "dasheng_tiny.pt"
    # the published checkpoints' config may omit the sizes (the dasheng_* loaders pass them)
    torch.save({"model": model.state_dict(), "config": {"num_heads": 4}}, file)
    reference = dasheng.Dasheng.from_pretrained(str(file), embed_dim=64, depth=3).eval()
    return file, reference, convert(file, tmp_path_factory.mktemp("echoic-dasheng"))


def run(model, wave):
    with torch.no_grad():
        return model(AudioBatch(torch.from_numpy(wave)[None], torch.tensor([len(wave)]), 16000))


def test_every_layer_matches_dasheng_on_real_clips(checkpoint, clips, record_parity):
    _, reference, out = checkpoint
    model = load_dir(out)
    for name, wave in clips.items():
        theirs = hooked_layers(
            reference.blocks, lambda w=wave: reference(torch.from_numpy(w)[None])
        )
        diffs = layer_diffs(run(model, wave).layers, theirs)
        record_parity("dasheng", "dasheng 0.0.9", name, diffs)
        assert max(diffs) <= TOLERANCE, f"{name}: per-layer max |diff| {diffs}"


def test_the_frontend_is_dashengs_bit_for_bit(checkpoint, clips):
    """torchaudio's centred mel spectrogram in dB (top_db 120) before the input BatchNorm."""
    _, reference, out = checkpoint
    model = load_dir(out)
    for wave in clips.values():
        samples = torch.from_numpy(wave)
        features = model.frontend(AudioBatch(samples[None], torch.tensor([len(wave)]), 16000))
        with torch.no_grad():
            theirs = reference.front_end(samples[None])
        assert features.values.shape == theirs.shape
        assert torch.equal(features.values, theirs)


def test_the_converted_config(checkpoint):
    file, _, out = checkpoint
    config = read_config(out)
    assert config.encoder == "dasheng" and config.frontend == "centred_mel"
    enc = config.encoder_config
    assert (enc["dim"], enc["depth"], enc["heads"]) == (64, 3, 4)
    assert enc["patch"] == [64, 4] and enc["patch_stride"] == [64, 4] and enc["n_bins"] == 64
    assert enc["positions"] == "learned_separable" and enc["position_grid"] == [1, 252]
    assert enc["input_norm"] is True and enc["cls_token"] is False
    front = config.frontend_config
    assert (front["n_fft"], front["hop_length"], front["n_mels"]) == (512, 160, 64)
    assert front["top_db"] == 120.0 and front["f_max"] == 8000.0
    assert config.embed == {"chunk_s": 10.08}
    dropped = set(config.provenance["dropped"])
    assert {"front_end.0.mel_scale.fb", "init_bn.1.num_batches_tracked"} <= dropped
    assert detect(file).name == "dasheng" and detect(file.parent).name == "dasheng"


def test_a_bare_state_dict_takes_the_heads_of_its_published_width(
    dasheng, checkpoint, tmp_path, monkeypatch
):
    """Without a config the heads come from the published sizes (768 → 12, …); an unpublished
    width without ``num_heads`` is refused, naming the fix."""
    _, reference, out = checkpoint
    torch.save(reference.state_dict(), tmp_path / "bare.pt")
    with pytest.raises(ConversionError, match="num_heads"):
        convert(tmp_path / "bare.pt", tmp_path / "refused")
    monkeypatch.setitem(DASHENG_SIZES, 64, (3, 4))  # as if 64 were a published width
    bare = convert(tmp_path / "bare.pt", tmp_path / "bare")
    assert read_config(bare).encoder_config == read_config(out).encoder_config


def test_token_pooling_and_layer_scale_variants(dasheng, tmp_path, clips):
    """``pooling="token"`` (a CLS token with its own position) and ``init_values`` (layer scale)."""
    model = make_dasheng(dasheng, pooling="token", init_values=0.1)
    config = {"num_heads": 4, "pooling": "token", "init_values": 0.1}
    torch.save({"model": model.state_dict(), "config": config}, tmp_path / "token.pt")
    reference = dasheng.Dasheng.from_pretrained(str(tmp_path / "token.pt"), embed_dim=64, depth=3)
    ours = load_dir(convert(tmp_path / "token.pt", tmp_path / "out"))
    wave = clips["esc50"]
    theirs = hooked_layers(reference.eval().blocks, lambda: reference(torch.from_numpy(wave)[None]))
    out = run(ours, wave)
    assert out.cls_layers is not None
    diffs = layer_diffs(out.layers, [h[:, 1:] for h in theirs])
    diffs += layer_diffs(out.cls_layers, [h[:, 0] for h in theirs])
    assert max(diffs) <= TOLERANCE, diffs


def test_a_checkpoint_whose_filter_bank_is_not_its_config_is_refused(dasheng, checkpoint, tmp_path):
    file, _, _ = checkpoint
    dump = torch.load(file)
    dump["config"]["f_max"] = 7000  # the stored filters are for 8 kHz
    torch.save(dump, tmp_path / "odd.pt")
    with pytest.raises(ConversionError, match=r"mel_scale\.fb differs"):
        convert(tmp_path / "odd.pt", tmp_path / "out")


def test_the_registered_base_size_has_dasheng_base_parameter_count(dasheng):
    with torch.device("meta"):
        ours = build_encoder("dasheng")
    reference = dasheng.Dasheng(embed_dim=768, depth=12, num_heads=12)
    # Dasheng's BatchNorm statistics are buffers in both; its frontend has no parameters
    count = sum(p.numel() for p in reference.parameters())
    assert sum(p.numel() for p in ours.parameters()) == count
