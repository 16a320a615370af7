"""The contract every registered tokenizer keeps, each at a tiny size.

Fit on random frames (clips of different lengths; a teacher's frames for those that predict
one), then: ids of the declared shape, dtype and range; the same ids after save → load; the same
fit and ids again from the same seed, other ids from another; a clip's ids alone equal its ids in
a padded batch; the files are safetensors + JSON (no pickle); building leaves the global RNG alone.
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from echoic.errors import CheckpointError, ConfigError
from echoic.tokenizers import TOKENIZERS, build_tokenizer, load_tokenizer
from echoic.tokenizers.base import SIDECAR_FILE, WEIGHTS_FILE

NAMES = TOKENIZERS.names()
DIM, TARGET_DIM = 12, 6
TINY = {
    "random_projection": {"codebook_size": 16, "codebook_dim": 4, "n_codebooks": 2},
    "kmeans": {"n_clusters": 8, "batch_size": 64, "epochs": 2},
    "rvq": {"n_codebooks": 3, "codebook_size": 8, "epochs": 2, "batch_size": 64},
    "mvq": {"n_codebooks": 3, "codebook_size": 8, "epochs": 2, "batch_size": 64},
    "beats_acoustic": {
        "dim": 16,
        "heads": 2,
        "codebook_size": 8,
        "codebook_dim": 4,
        "segment_frames": 8,
        "batch_size": 4,
        "steps": 6,
    },
}


def test_the_tokenizers_are_registered() -> None:
    assert {"random_projection", "kmeans", "rvq", "mvq", "beats_acoustic"} <= set(NAMES)
    missing = sorted(set(NAMES) - set(TINY))
    assert not missing, f"add a tiny config for {missing} to TINY in this test"


def clips(seed: int, n: int = 12) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Clips of 9..30 frames around a few centres (so clusters exist) and their 'teacher'."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(5, DIM, generator=g) * 3
    mixing = torch.randn(DIM, TARGET_DIM, generator=g)
    xs, ys = [], []
    for _ in range(n):
        t = int(torch.randint(9, 31, (1,), generator=g))
        which = torch.randint(0, 5, (t,), generator=g)
        x = centres[which] + 0.3 * torch.randn(t, DIM, generator=g)
        xs.append(x)
        ys.append(torch.tanh(x @ mixing))
    return xs, ys


def fitted(name: str, seed: int = 0, data_seed: int = 0):
    tokenizer = build_tokenizer(name, DIM, {**TINY[name], "seed": seed}, target_dim=None)
    if tokenizer.uses_targets:
        tokenizer = build_tokenizer(name, DIM, {**TINY[name], "seed": seed}, TARGET_DIM)
    xs, ys = clips(data_seed)
    stats = tokenizer.fit(xs, ys if tokenizer.uses_targets else None)
    return tokenizer.eval(), stats


@pytest.fixture(scope="module", params=NAMES)
def case(request):
    tokenizer, stats = fitted(request.param)
    batch = torch.stack([x[:9] for x in clips(1)[0][:3]])  # frames it has not seen
    return request.param, tokenizer, stats, batch


def test_ids_shape_dtype_range(case) -> None:
    _, tokenizer, stats, batch = case
    ids = tokenizer(batch)
    assert ids.shape == (3, 9, tokenizer.n_codebooks) and ids.dtype == torch.int64
    for c, size in enumerate(tokenizer.codebook_sizes):
        assert 0 <= int(ids[..., c].min()) and int(ids[..., c].max()) < size
    assert stats and all(isinstance(v, float) for v in stats.values())
    assert tokenizer.bits_per_frame == pytest.approx(
        sum(torch.log2(torch.tensor(float(k))).item() for k in tokenizer.codebook_sizes)
    )
    assert len(set(ids.flatten().tolist())) > 1  # the frames are not all one token


def test_save_load_same_ids_no_pickle(case, tmp_path) -> None:
    name, tokenizer, _, batch = case
    tokenizer.source = {"model": "m", "layer": 3, "input": "layer"}
    tokenizer.frame_hop_ms = 20.0
    tokenizer.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [SIDECAR_FILE, WEIGHTS_FILE]
    load_file(str(tmp_path / WEIGHTS_FILE))  # plain safetensors
    meta = json.loads((tmp_path / SIDECAR_FILE).read_text())
    assert meta["tokenizer"] == name and meta["codebook_sizes"] == list(tokenizer.codebook_sizes)
    loaded = load_tokenizer(tmp_path)
    assert torch.equal(loaded(batch), tokenizer(batch))
    assert loaded.identity == tokenizer.identity
    assert loaded.source == tokenizer.source and loaded.frame_hop_ms == 20.0


def test_deterministic_given_the_seed(case) -> None:
    name, tokenizer, stats, batch = case
    again, stats_again = fitted(name)
    assert torch.equal(again(batch), tokenizer(batch))
    assert stats_again == stats
    assert again.identity == tokenizer.identity
    other, _ = fitted(name, seed=1)
    assert other.identity != tokenizer.identity


def test_a_clip_alone_equals_the_clip_in_a_padded_batch(case) -> None:
    _, tokenizer, _, batch = case
    padded = torch.cat([batch, torch.randn(3, 4, DIM) * 50], dim=1)  # garbage past the end
    padding = torch.zeros(3, 13, dtype=torch.bool)
    padding[:, 9:] = True
    assert torch.equal(tokenizer(padded, padding)[:, :9], tokenizer(batch))
    assert torch.equal(tokenizer(batch[1:2]), tokenizer(batch)[1:2])


def test_building_leaves_the_global_rng_alone(case) -> None:
    name = case[0]
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    build_tokenizer(name, DIM, TINY[name], TARGET_DIM if case[1].uses_targets else None)
    assert torch.equal(torch.rand(3), expected)


def test_errors_say_what_was_expected(case, tmp_path) -> None:
    name, tokenizer, _, _ = case
    with pytest.raises(ConfigError, match=rf"\(b, T, {DIM}\)"):
        tokenizer(torch.zeros(1, 4, DIM + 1))
    with pytest.raises(ConfigError, match="not fitted"):
        build_tokenizer(name, DIM, TINY[name])(torch.zeros(1, 4, DIM))
    with pytest.raises(ConfigError, match="Did you mean"):
        build_tokenizer(name, DIM, {"sed": 1})
    with pytest.raises(CheckpointError, match="tokenizer fit"):
        load_tokenizer(tmp_path)
