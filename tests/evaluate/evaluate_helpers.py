"""Synthetic HEAR task directories (no shared data needed) and a cheap fake embedding model."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from echoic.embed.base import ClipEmbedding

SR = 16000
FREQS = {"low": 500.0, "mid": 2500.0, "high": 5500.0}  # distinct 1-kHz bands


def write_caption_corpus(root: Path, heldout: list[str], captions: list[str]) -> Path:
    """A captioned corpus at ``root`` (echoic.data.captions' layout): an empty train manifest,
    ``heldout`` manifest rows and ``captions`` rows (each a CSV line with its newline)."""
    head = "file,source,duration_s,sample_rate,sha256,origin\n"
    (root / "manifest.csv").write_text(head)
    (root / "heldout.csv").write_text(head + "".join(heldout))
    (root / "captions.csv").write_text(
        "file,source,split,group,caption,caption_lang,caption_kind\n" + "".join(captions)
    )
    return root


def write_task(
    root: Path,
    name: str,
    event: bool,
    split_mode: str = "new_split_kfold",
    folds: int = 3,
    per_class: int = 4,
    seconds: float = 1.0,
) -> Path:
    """A HEAR task: tones of three frequencies (scene) or tone bursts inside noise (event)."""
    rng = np.random.default_rng(0)
    task = root / f"{name}-v1.0.0-full"
    splits = (
        [f"fold{i:02d}" for i in range(folds)]
        if split_mode != "trainvaltest"
        else ["train", "valid", "test"]
    )
    meta = {
        "task_name": name,
        "version": "v1.0.0",
        "embedding_type": "event" if event else "scene",
        "prediction_type": "multilabel" if event else "multiclass",
        "split_mode": split_mode,
        "sample_duration": seconds,
        "evaluation": ["event_onset_200ms_fms", "segment_1s_er"] if event else ["top1_acc", "mAP"],
        "splits": splits,
    }
    if split_mode != "trainvaltest":
        meta["nfolds"] = folds
    (task / str(SR)).mkdir(parents=True)
    (task / "task_metadata.json").write_text(json.dumps(meta))
    labels = sorted(FREQS)
    (task / "labelvocabulary.csv").write_text(
        "idx,label\n" + "".join(f"{i},{lab}\n" for i, lab in enumerate(labels))
    )
    t = np.arange(int(seconds * SR)) / SR
    for split in splits:
        (task / str(SR) / split).mkdir()
        content = {}
        for lab in labels:
            for k in range(per_class):
                f = f"{split}-{lab}-{k}.wav"
                x = 0.02 * rng.standard_normal(t.shape)
                if event:
                    start = float(rng.uniform(0.1, seconds / 2))
                    end = start + float(rng.uniform(0.3, seconds / 2 - 0.1))
                    on = (t >= start) & (t < end)
                    x[on] += 0.5 * np.sin(2 * np.pi * FREQS[lab] * t[on])
                    content[f] = [{"label": lab, "start": 1000 * start, "end": 1000 * end}]
                else:
                    x += 0.5 * np.sin(2 * np.pi * FREQS[lab] * (1 + 0.01 * k) * t)
                    content[f] = [lab]
                sf.write(task / str(SR) / split / f, x.astype(np.float32), SR, subtype="PCM_16")
        (task / f"{split}.json").write_text(json.dumps(content, indent=1, sort_keys=True))
    return task


class BandEnergyModel:
    """A cheap EmbeddingModel: log energy in a few frequency bands per 50 ms frame.

    Counts the clips it embeds; ``fail_after`` makes it raise after that many calls (to test
    resuming).
    """

    label = "band-energy (test)"
    embedding_size = 8
    min_samples = 800

    def __init__(self, sample_rate: int = SR, fail_after: int | None = None) -> None:
        self.sample_rate = sample_rate
        self.identity = f"band-energy-{sample_rate}"
        self.fail_after = fail_after
        self.calls = 0
        self.clips = 0

    def embed(self, waveforms, sample_rate=None):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise RuntimeError("simulated crash")
        self.calls += 1
        self.clips += len(waveforms)
        out = []
        hop = self.sample_rate // 20
        edges = np.linspace(0, 0.5, self.embedding_size + 1)
        for w in waveforms:
            x = np.asarray(w, np.float32)
            n = max(1, len(x) // hop)
            frames = x[: n * hop].reshape(n, hop)
            spec = np.abs(np.fft.rfft(frames, axis=1)) ** 2
            freqs = np.fft.rfftfreq(hop)
            bands = np.stack(
                [spec[:, (freqs >= a) & (freqs < b)].sum(1) for a, b in itertools.pairwise(edges)],
                1,
            )
            feats = torch.from_numpy(np.log(bands + 1e-6).astype(np.float32))
            times = torch.from_numpy((np.arange(n) + 0.5) * 50.0)
            out.append(ClipEmbedding(feats.mean(0), feats, times, feats, times))
        return out
