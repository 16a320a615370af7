"""The ``textretrieval`` protocol: text → audio and audio → text search on held-out captions.

The held-out caption set of a corpus folder (``heldout.csv`` + the ``heldout`` rows of
``captions.csv``, :mod:`echoic.data.captions`: whole groups kept out of training by a seeded
hash) is embedded by a joint audio–text model (:class:`echoic.objectives.joint.JointModel`):
every held-out clip by ``embed_audio``, every distinct caption text by ``embed_text``.

Relevance: a caption text is relevant to every clip that carries it (identical texts — the same
caption in ``en`` and ``en-GB``, or one template caption of two clips — are one query).

* text → audio: each distinct caption queries all held-out clips;
* audio → text: each clip queries all distinct captions.

Scores, by exact cosine similarity (ties to the lower index), averaged over queries:
``R@k`` (k = 1, 5, 10: a relevant item among the k nearest) and ``mAP`` (average precision over
the whole ranking: the mean over relevant items of the precision at their rank; with one
relevant item, 1 / its rank). Metric names carry the direction: ``t2a_R@10``, ``a2t_mAP``, ...;
the primary metric is ``t2a_R@10``.

``caption_langs`` keeps captions in some languages (``en`` also keeps ``en-GB``): an English
text tower should be scored on English captions. One run (the held-out set is one split).

``fusion`` (``echoic eval --fusion``): a ``collap`` export is scored with its text-conditioned
chunk fusion instead of the text-independent ``embed_audio`` vector: each clip is cut into the
chunks ``embed_audio`` averages (:meth:`~echoic.objectives.joint.JointModel.embed_audio_chunks`)
and each (caption, clip) pair scores the cosine of the caption with the clip's vector fused for
that caption (:meth:`~echoic.objectives.collap.ChunkFusion.scores`); its records are the model's
name + ``+fusion``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from echoic.data.audio import load_audio
from echoic.data.captions import CaptionedClip, read_captions
from echoic.errors import ConfigError
from echoic.evaluate.results import jsonable, result_path, summarise, write_result
from echoic.evaluate.zeroshot import JointAudioModel, load_joint
from echoic.objectives.collap import ChunkFusion, load_fusion

__all__ = [
    "KS",
    "METRICS",
    "CaptionSet",
    "caption_set",
    "evaluate_text_retrieval",
    "fused_similarity",
    "ranking_scores",
    "text_audio_retrieval",
]

KS = (1, 5, 10)
DIRECTIONS = ("t2a", "a2t")
METRICS = [f"t2a_R@{k}" for k in KS] + ["t2a_mAP"] + [f"a2t_R@{k}" for k in KS] + ["a2t_mAP"]
PROTOCOL = "textretrieval"


@dataclass
class CaptionSet:
    """Held-out clips, the distinct caption texts, and ``relevant`` ``(texts, clips)`` bool."""

    clips: list[CaptionedClip]
    texts: list[str]
    relevant: np.ndarray


def _lang_ok(lang: str, langs: Sequence[str]) -> bool:
    return not langs or any(lang == w or lang.startswith(f"{w}-") for w in langs)


def caption_set(corpus: str | Path, langs: Sequence[str] = ()) -> CaptionSet:
    """The held-out caption set of a corpus folder, captions filtered by language."""
    clips = []
    for clip in read_captions(Path(corpus), split="heldout"):
        kept = tuple(c for c in clip.captions if _lang_ok(c.lang, langs))
        if kept:
            clips.append(CaptionedClip(**{**clip.__dict__, "captions": kept}))
    texts = list(dict.fromkeys(c.text.strip() for clip in clips for c in clip.captions))
    index = {t: i for i, t in enumerate(texts)}
    relevant = np.zeros((len(texts), len(clips)), bool)
    for j, clip in enumerate(clips):
        for c in clip.captions:
            relevant[index[c.text.strip()], j] = True
    return CaptionSet(clips, texts, relevant)


def ranking_scores(
    similarity: np.ndarray, relevant: np.ndarray, ks: Sequence[int] = KS
) -> dict[str, float]:
    """``R@k`` and ``mAP`` of queries ``(Q, N)`` similarities against ``(Q, N)`` relevance
    (module docstring); queries without a relevant item are left out."""
    order = np.argsort(-similarity, axis=1, kind="stable")
    hits = np.take_along_axis(relevant, order, axis=1)
    scored = hits.any(1)
    hits = hits[scored]
    out: dict[str, float] = {}
    for k in ks:
        out[f"R@{k}"] = float(hits[:, :k].any(1).mean()) if len(hits) else float("nan")
    cumulative = np.cumsum(hits, axis=1)
    precision = cumulative / np.arange(1, hits.shape[1] + 1)
    ap = (precision * hits).sum(1) / np.maximum(hits.sum(1), 1)
    out["mAP"] = float(ap.mean()) if len(hits) else float("nan")
    return out


def fused_similarity(
    model: JointAudioModel, fusion: ChunkFusion, waves: Sequence[np.ndarray], texts: Sequence[str]
) -> np.ndarray:
    """``(texts, clips)`` scores of the text-conditioned chunk fusion (module docstring)."""
    chunks, valid, glob = model.joint.embed_audio_chunks(waves, model.sample_rate)
    text = model.embed_text(texts).float()
    with torch.inference_mode():
        scores = fusion.scores(chunks, valid, glob, text)  # (clips, texts)
    return scores.t().cpu().numpy().astype(np.float64)


def text_audio_retrieval(
    model: JointAudioModel, data: CaptionSet, fusion: ChunkFusion | None = None
) -> dict[str, float]:
    """Both directions' scores (``t2a_R@1`` … ``a2t_mAP``) of ``model`` on ``data``; with
    ``fusion``, ranked by the text-conditioned chunk fusion (module docstring)."""
    rate = model.sample_rate
    waves = [load_audio(clip.path, sample_rate=rate)[0] for clip in data.clips]
    if fusion is not None:
        similarity = fused_similarity(model, fusion, waves, data.texts)
    else:
        audio = model.scene_embeddings(waves, rate).float().cpu().numpy().astype(np.float64)
        text = model.embed_text(data.texts).float().cpu().numpy().astype(np.float64)
        similarity = text @ audio.T
    scores = {}
    for direction, sim, rel in (
        ("t2a", similarity, data.relevant),
        ("a2t", similarity.T, data.relevant.T),
    ):
        for name, value in ranking_scores(sim, rel).items():
            scores[f"{direction}_{name}"] = value
    return scores


def evaluate_text_retrieval(
    models: Sequence[Any],
    corpora: Sequence[str | Path],
    out: str | Path = "results",
    langs: Sequence[str] = (),
    resume: bool = True,
    log: Callable[[str], None] = print,
    fusion: bool = False,
) -> list[dict[str, Any]]:
    """Score every joint model on the held-out caption set of every corpus folder; one record
    per (model, corpus) in ``out`` beside the other protocols' (``<corpus>-heldout``).
    ``fusion``: score ``collap`` exports (model directories) with their chunk fusion."""
    out = Path(out)
    sets = {Path(c): caption_set(c, langs) for c in corpora}
    records = []
    for model_like in models:
        name, model = load_joint(model_like)
        identity = model.identity
        fuser = None
        if fusion:
            if not isinstance(model_like, (str, Path)):
                raise ConfigError(
                    "textretrieval with fusion scores collap exports: pass model directories."
                )
            fuser = load_fusion(model_like)
            digest = hashlib.sha256()
            for key, tensor in sorted(fuser.state_dict().items()):
                digest.update(key.encode())
                digest.update(tensor.contiguous().numpy().tobytes())
            name, identity = f"{name}+fusion", f"{identity}+fusion-{digest.hexdigest()[:16]}"
        for corpus, data in sets.items():
            task = f"{corpus.resolve().name}-heldout"
            done = result_path(out, name, task, PROTOCOL)
            config: dict[str, Any] = {"protocol": PROTOCOL, "caption_langs": list(langs)}
            if fusion:
                config["fusion"] = True
            if resume and done.is_file():
                previous = json.loads(done.read_text())
                if previous.get("identity") == identity and previous.get("config") == config:
                    log(
                        f"  {task:24s} t2a_R@10 {previous['scores']['t2a_R@10']['mean']:.3f} (done earlier)"
                    )
                    records.append(previous)
                    continue
            test = text_audio_retrieval(model, data, fuser)
            runs = [{"fold": "heldout", "fold_index": 0, "seed": 0, "test": test}]
            record = {
                "model": name,
                "model_label": model.label,
                "identity": identity,
                "task": task,
                "task_path": str(corpus),
                "task_key": task,
                "protocol": PROTOCOL,
                "primary_metric": "t2a_R@10",
                "metrics": METRICS,
                "scores": summarise(runs, METRICS),
                "runs": runs,
                "hparams": {
                    "clips": len(data.clips),
                    "captions": len(data.texts),
                    "relevant": "a caption text is relevant to every clip that carries it",
                    "similarity": (
                        "cosine of the caption and the clip's chunks fused for it (collap)"
                        if fusion
                        else "cosine, exact, ties to the lower index"
                    ),
                },
                "config": config,
            }
            write_result(record, done)
            records.append(jsonable(record))
            log(
                f"  {task:24s} t2a_R@10 {test['t2a_R@10']:.3f} a2t_R@10 {test['a2t_R@10']:.3f} "
                f"({len(data.clips)} clips, {len(data.texts)} captions)"
            )
    return records
