"""``byol-a``: BYOL-A v1 weights (an ``AudioNTT2020`` state dict), converted, give s3prl 0.4.18's
BYOL-A upstream on real clips: its features, both frame layers and its embedding (the temporal
mean + max) of every 1-s window it cuts (max |diff| <= 1e-4; ``-s`` prints the maxima).
"""

from __future__ import annotations

import pytest
import torch
from convert_helpers import layer_diffs
from converted_checks import check_hear, linear_smoke, task_dir
from s3prl_reference import byol_a_expert, byol_a_features, s3prl_upstreams, save_byol_a

from echoic.checkpoint import load_dir, read_config
from echoic.convert import convert, detect
from echoic.embed.embedder import Embedder
from echoic.types import AudioBatch, Features

TOLERANCE = 1e-4
WINDOW = 16000


@pytest.fixture(scope="module")
def s3prl():
    return s3prl_upstreams()


@pytest.fixture(scope="module")
def byol_a(s3prl, tmp_path_factory):
    """(weights file, converted directory, s3prl's expert)."""
    folder = tmp_path_factory.mktemp("byol-a")
    path = save_byol_a(s3prl, folder / "AudioNTT2020-BYOLA-64x96d64.pth")
    return path, convert(path, folder / "echoic"), byol_a_expert(s3prl, path)


def windows(wave: torch.Tensor) -> torch.Tensor:
    """``(n, 16000)`` the 1-s windows s3prl's expert cuts (every 1 s, the last zero-padded)."""
    n = -(-len(wave) // WINDOW)
    return torch.nn.functional.pad(wave, (0, n * WINDOW - len(wave))).reshape(n, WINDOW)


def reference(expert, wave):
    """The expert's embeddings ``(n, d)`` and its two frame layers ``(n, T', d)`` (hooked)."""
    fc, seen = expert.model.fc, []
    hooks = [fc[i].register_forward_hook(lambda _m, _a, out: seen.append(out)) for i in (1, 4)]
    try:
        with torch.no_grad():
            embeddings = expert([wave])["hidden_states"][0][0]
    finally:
        for hook in hooks:
            hook.remove()
    return embeddings, seen


def test_every_layer_and_the_embedding_match_s3prl_on_real_clips(byol_a, clips, record_parity):
    _, out, expert = byol_a
    model = load_dir(out)
    for name, clip in clips.items():
        wave = torch.from_numpy(clip)
        embeddings, layers = reference(expert, wave)
        cut = windows(wave)
        theirs = torch.stack([byol_a_features(expert, w) for w in cut])  # (n, F, T)
        n, frames = len(cut), theirs.shape[-1]
        with torch.no_grad():
            lengths = torch.full((n,), frames)
            same = model.encoder(Features(theirs, lengths, 0.01, 0.0))
            batch = AudioBatch(cut, torch.full((n,), WINDOW), 16000)
            ours, mine = model(batch), model.frontend(batch).values
        diffs = layer_diffs(same.layers, layers) + layer_diffs(
            [model.encoder.embedding(same)], [embeddings]
        )
        end_to_end = layer_diffs(ours.layers, layers) + layer_diffs(
            [model.encoder.embedding(ours)], [embeddings]
        )
        feature_diff = float((mine - theirs).abs().max())
        record_parity("byol-a", "s3prl 0.4.18", name, diffs)
        record_parity("byol-a e2e", "s3prl 0.4.18", name, end_to_end)
        record_parity("byol-a features", "s3prl 0.4.18", name, [feature_diff])
        assert max(diffs + end_to_end + [feature_diff]) <= TOLERANCE, (diffs, end_to_end)


def test_the_embedder_pools_mean_plus_max(byol_a, clips):
    model = load_dir(byol_a[1])
    assert read_config(byol_a[1]).embed == {"scene_pool": "mean+max"}
    wave = torch.from_numpy(clips["esc50"])  # 3 s: one chunk
    scene = Embedder(model).scene_embeddings([wave])[0]
    # the chunk: the samples its tokens' declared frames cover (the encoder's last token also
    # reads a few frames past them: an edge effect of a chunk's end, see encoders/byol_a.py)
    tokens = model.geometry.num_time_steps(len(wave))
    wave = wave[: model.geometry.samples_for(tokens)]
    with torch.no_grad():
        whole = model(AudioBatch(wave[None], torch.tensor([len(wave)]), 16000))
    torch.testing.assert_close(scene, model.encoder.embedding(whole)[0], atol=1e-5, rtol=0)
    mean = Embedder(model, scene_pool="mean").scene_embeddings([wave])[0]
    torch.testing.assert_close(mean, whole.last[0].mean(0), atol=1e-5, rtol=0)


def test_prefixed_and_wrapped_weights_load_the_same(byol_a, tmp_path, clips):
    path, out, _ = byol_a
    state = torch.load(path)
    wrapped = {"state_dict": {f"model.online.{k}": v for k, v in state.items()}, "epoch": 99}
    wrapped["state_dict"]["model.projector.0.weight"] = torch.zeros(2, 2)  # skipped, as s3prl
    torch.save(wrapped, tmp_path / "byol-a.pth")
    assert detect(tmp_path / "byol-a.pth").name == "byol-a"
    again = convert(tmp_path / "byol-a.pth", tmp_path / "echoic")
    assert read_config(again).provenance["dropped"] == ["model.projector.0.weight"]
    first, second = load_dir(out).encoder.state_dict(), load_dir(again).encoder.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_hear_api(byol_a):
    check_hear(byol_a[1], width=64)


def test_echoic_eval_linear_on_a_real_task(byol_a, shared_data, tmp_path):
    linear_smoke(byol_a[1], task_dir(shared_data, tmp_path / "tasks"), tmp_path / "out")


def test_the_registered_size_has_the_published_parameter_count(s3prl):
    from echoic.encoders import build_encoder

    theirs = s3prl["byol_a_model"].AudioNTT2020(d=2048)  # AudioNTT2020-BYOLA-64x96d2048: 5.3 M
    with torch.device("meta"):
        ours = build_encoder("byol_a")
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())
