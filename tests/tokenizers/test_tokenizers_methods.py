"""What each tokenizer computes, checked against independent computations and known structure."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import normalized_mutual_info_score

from echoic.tokenizers import build_tokenizer, load_tokenizer


def blobs(
    n_per: int, centres: torch.Tensor, noise: float, seed: int
) -> tuple[torch.Tensor, np.ndarray]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(centres.shape[0]).repeat_interleave(n_per)
    x = centres[labels] + noise * torch.randn(len(labels), centres.shape[1], generator=g)
    return x, labels.numpy()


def test_random_projection_is_cosine_nearest_of_the_standardised_projection() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 10, generator=g) * torch.arange(1, 11) + 5
    tok = build_tokenizer("random_projection", 10, {"codebook_size": 32, "codebook_dim": 6})
    tok.fit([x[:120], x[120:]])
    # numpy, from the saved buffers: standardise, project, l2-normalise, max cosine
    data = x.double().numpy()
    z = (data - data.mean(0)) / data.std(0)
    p = z @ tok.projection[0].double().numpy()
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    book = tok.codebook[0].double().numpy()
    np.testing.assert_allclose(np.linalg.norm(book, axis=1), 1.0, rtol=1e-6)
    expected = (p @ book.T).argmax(1)
    assert (tok(x[None])[0, :, 0].numpy() == expected).mean() > 0.99  # float32 vs float64 ties
    other = build_tokenizer("random_projection", 10, {"codebook_size": 32, "seed": 1})
    assert not torch.equal(other.projection, tok.projection)  # the seed draws the projection


def test_kmeans_recovers_separated_clusters() -> None:
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    x, labels = blobs(100, centres, 0.5, seed=0)
    tok = build_tokenizer("kmeans", 2, {"n_clusters": 4, "batch_size": 50, "epochs": 3})
    stats = tok.fit([x])
    ids = tok(x[None])[0, :, 0].numpy()
    assert normalized_mutual_info_score(labels, ids) > 0.99
    assert stats["inertia_per_frame"] == pytest.approx(2 * 0.25, rel=0.25)  # 2 dims × σ²


def test_kmeans_minibatch_update_is_the_running_mean() -> None:
    tok = build_tokenizer("kmeans", 1, {"n_clusters": 2})
    tok.centroids.copy_(torch.tensor([[0.0], [10.0]]))
    tok.counts.copy_(torch.tensor([3.0, 1.0], dtype=torch.float64))
    tok._minibatch_step(torch.tensor([[1.0], [2.0], [9.0]]))
    # cluster 0: (3 * 0 + 1 + 2) / 5; cluster 1: (1 * 10 + 9) / 2
    torch.testing.assert_close(tok.centroids, torch.tensor([[0.6], [9.5]]))
    assert tok.counts.tolist() == [5.0, 2.0] and int(tok.steps) == 1


def test_kmeans_resumes_from_a_saved_state(tmp_path) -> None:
    centres = torch.randn(6, 3, generator=torch.Generator().manual_seed(2)) * 5
    first, _ = blobs(40, centres, 1.0, seed=3)
    second, _ = blobs(40, centres, 1.0, seed=4)
    config = {"n_clusters": 6, "batch_size": 32, "epochs": 1}
    in_memory = build_tokenizer("kmeans", 3, config)
    in_memory.fit([first])
    in_memory.save(tmp_path)
    steps = int(in_memory.steps)
    in_memory.fit([second])
    resumed = load_tokenizer(tmp_path)
    resumed.fit([second])
    assert int(resumed.steps) == int(in_memory.steps) > steps  # went on, did not start over
    assert torch.equal(resumed.centroids, in_memory.centroids)
    assert torch.equal(resumed.counts, in_memory.counts)


def test_rvq_codebooks_refine_and_reconstruct() -> None:
    x = torch.randn(600, 8, generator=torch.Generator().manual_seed(0))
    errors = {}
    for n in (1, 3):
        tok = build_tokenizer("rvq", 8, {"n_codebooks": n, "codebook_size": 16, "epochs": 2})
        stats = tok.fit([x])
        errors[n] = stats["relative_error"]
        ids = tok(x[None])
        recon = tok.reconstruct(ids)[0]
        variance = (x - x.mean(0)).square().sum()  # standardised ≈ raw here (unit variance)
        std = tok.norm.std
        rel = float(((x - recon) / std).square().sum() / (variance / std.square().mean()))
        assert rel == pytest.approx(stats["relative_error"], rel=0.1)
    assert errors[3] < 0.8 * errors[1]
    assert stats["relative_error_first_codebook"] > stats["relative_error"]


@pytest.mark.parametrize("train", ["ema", "gradient"])
@pytest.mark.parametrize("name", ["rvq", "mvq"])
def test_vq_training_lowers_the_error_of_its_start(name: str, train: str) -> None:
    """From codebooks on random frames (``init_iter=0``), EMA and gradient training both learn."""
    x = torch.randn(500, 6, generator=torch.Generator().manual_seed(1))
    config = {"n_codebooks": 2, "codebook_size": 8, "train": train, "init_iter": 0}
    config |= {"learning_rate": 0.01, "batch_size": 64}
    start = build_tokenizer(name, 6, {**config, "epochs": 0}).fit([x])["relative_error"]
    trained = build_tokenizer(name, 6, {**config, "epochs": 20}).fit([x])["relative_error"]
    assert trained < 0.8 * start


def test_mvq_quantises_each_head_with_its_own_codebook() -> None:
    g = torch.Generator().manual_seed(0)
    heads = [torch.randn(3, 2, generator=g) * 4 for _ in range(2)]  # 3 points per head
    picks = torch.randint(0, 3, (300, 2), generator=g)
    x = torch.cat([heads[0][picks[:, 0]], heads[1][picks[:, 1]]], dim=1)  # 9 combinations
    tok = build_tokenizer(
        "mvq", 4, {"n_codebooks": 2, "codebook_size": 4, "rotate": False, "epochs": 1}
    )
    stats = tok.fit([x])
    assert stats["relative_error"] < 1e-3  # 3 points per head fit in 4 codes: exact
    ids = tok(x[None])[0]
    for c in range(2):
        assert normalized_mutual_info_score(picks[:, c].numpy(), ids[:, c].numpy()) > 0.99
    torch.testing.assert_close(tok.reconstruct(ids), x, atol=1e-3, rtol=1e-3)


def test_beats_acoustic_learns_tokens_that_predict_the_teacher() -> None:
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 8, generator=g) * 2
    teacher_of = torch.randn(4, 5, generator=g)
    xs, ys, labels = [], [], []
    for _ in range(24):  # clips of slowly changing states, a teacher that depends on the state
        state = torch.randint(0, 4, (6,), generator=g).repeat_interleave(5)
        xs.append(centres[state] + 0.3 * torch.randn(30, 8, generator=g))
        ys.append(teacher_of[state] + 0.05 * torch.randn(30, 5, generator=g))
        labels.append(state)
    config = {
        "dim": 16,
        "codebook_size": 8,
        "codebook_dim": 8,
        "segment_frames": 10,
        "batch_size": 8,
        "steps": 120,
        "learning_rate": 3e-3,
    }
    tok = build_tokenizer("beats_acoustic", 8, config, target_dim=5)
    stats = tok.fit(xs, ys)
    untrained = build_tokenizer("beats_acoustic", 8, {**config, "steps": 1}, 5).fit(xs, ys)
    assert stats["final_loss"] < 0.5 * untrained["final_loss"]
    ids = torch.cat([tok(x[None])[0, :, 0] for x in xs]).numpy()
    assert normalized_mutual_info_score(torch.cat(labels).numpy(), ids) > 0.6
    norms = tok.quantizer.codebook.norm(dim=-1)
    torch.testing.assert_close(norms, torch.ones_like(norms))  # l2-normed codebook
