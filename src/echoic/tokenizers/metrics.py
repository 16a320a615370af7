"""Token quality against labels: cluster purity and normalised mutual information (NMI).

Labels here are per clip (a speaker, a digit); tokens are per frame. Two views:

* :func:`frame_scores`: every frame's token against its clip's label. NMI (scikit-learn's
  ``normalized_mutual_info_score``, arithmetic mean normalisation) is 0 when the tokens say
  nothing about the label and 1 when tokens and labels determine each other; purity is the
  share of frames whose token's most frequent label is theirs (it rises with the number of
  tokens, NMI does not reward that as much);
* :func:`bag_scores`: each clip as its bag of tokens (:func:`clip_histograms`), the bags
  clustered by k-means into as many clusters as there are labels, and those clusters scored
  against the labels with the same two numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from echoic.errors import ConfigError

__all__ = ["bag_scores", "clip_histograms", "frame_scores", "purity"]


def purity(clusters: np.ndarray, labels: np.ndarray) -> float:
    """Share of items whose cluster's most frequent label is their own."""
    clusters, labels = np.asarray(clusters), np.asarray(labels)
    if clusters.shape != labels.shape or clusters.size == 0:
        raise ConfigError(
            f"purity needs equal, non-empty arrays; found {clusters.shape} and {labels.shape}."
        )
    _, cluster_ids = np.unique(clusters, return_inverse=True)
    _, label_ids = np.unique(labels, return_inverse=True)
    table = np.zeros((cluster_ids.max() + 1, label_ids.max() + 1), np.int64)
    np.add.at(table, (cluster_ids, label_ids), 1)
    return float(table.max(1).sum() / clusters.size)


def frame_scores(
    ids: Sequence[np.ndarray], labels: Sequence[int], seed: int = 0
) -> dict[str, float]:
    """NMI and purity of frame tokens against clip labels, per codebook.

    ids: per clip ``(n_codebooks, T_i)``; labels: one per clip. Returns ``nmi`` / ``purity`` of
    codebook 0, their means over codebooks (``nmi_mean`` / ``purity_mean``), ``frames``, and
    ``nmi_shuffled``: the NMI of codebook 0's tokens randomly permuted over the frames (seeded),
    the chance level of a tokenizer with the same token frequencies (NMI is biased upwards by
    many tokens and few frames; compare a tokenizer's NMI with its own chance level).
    """
    from sklearn.metrics import normalized_mutual_info_score

    if len(ids) != len(labels) or not ids:
        raise ConfigError(f"need one label per clip; found {len(ids)} clips, {len(labels)} labels.")
    tokens = np.concatenate([np.asarray(x) for x in ids], axis=1)
    frame_labels = np.concatenate(
        [np.full(np.asarray(x).shape[1], y) for x, y in zip(ids, labels, strict=True)]
    )
    nmis = [float(normalized_mutual_info_score(frame_labels, row)) for row in tokens]
    purities = [purity(row, frame_labels) for row in tokens]
    shuffled = np.random.default_rng(seed).permutation(tokens[0])
    return {
        "nmi": nmis[0],
        "nmi_shuffled": float(normalized_mutual_info_score(frame_labels, shuffled)),
        "purity": purities[0],
        "nmi_mean": float(np.mean(nmis)),
        "purity_mean": float(np.mean(purities)),
        "frames": float(tokens.shape[1]),
    }


def clip_histograms(ids: Sequence[np.ndarray], codebook_sizes: Sequence[int]) -> np.ndarray:
    """``(n_clips, sum K)`` relative token frequencies, one block per codebook summing to 1."""
    rows = []
    for clip in ids:
        clip = np.asarray(clip)
        blocks = [
            np.bincount(row, minlength=k) / max(row.size, 1)
            for row, k in zip(clip, codebook_sizes, strict=True)
        ]
        rows.append(np.concatenate(blocks))
    return np.stack(rows).astype(np.float64)


def bag_scores(histograms: np.ndarray, labels: Sequence[int], seed: int = 0) -> dict[str, float]:
    """NMI and purity of k-means clusters of clip histograms (tf-idf weighted, l2-normalised;
    as many clusters as labels, 10 restarts, seeded) against the clip labels."""
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfTransformer
    from sklearn.metrics import normalized_mutual_info_score

    labels_array = np.asarray(labels)
    k = len(np.unique(labels_array))
    if k < 2 or histograms.shape[0] <= k:
        raise ConfigError(
            f"bag-of-tokens clustering needs >= 2 labels and more clips than labels; found {k} "
            f"labels, {histograms.shape[0]} clips."
        )
    weighted = TfidfTransformer().fit_transform(histograms).toarray()
    clusters = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(weighted)
    return {
        "nmi": float(normalized_mutual_info_score(labels_array, clusters)),
        "purity": purity(clusters, labels_array),
        "clips": float(histograms.shape[0]),
    }
