"""Embeddings of a task's clips, computed once and cached on disk.

Layout: ``<cache>/<model identity>/<task folder>-<task fingerprint>/<model rate>from<audio rate>/``
holds ``<split>.npz`` per split. The key therefore changes when the model's outputs would
(``EmbeddingModel.identity``), when the task's labels/metadata change (fingerprint) and when the
audio comes from another rate. A split is embedded in pieces of ``piece_clips`` clips, each saved
atomically as ``<split>.part<k>.npz``; an interrupted run resumes at the first missing piece, and
the pieces are merged into ``<split>.npz`` when the split is complete.

Audio is read from the task's ``<model rate>/`` folder when it exists; otherwise from the closest
rate at or above the model's (else the highest), resampled with soxr "HQ" — and a line says so.
Multichannel task audio (e.g. binaural, FOA) reaches a mono model as its channel mean
(``load_audio``'s mix-down); a model taking ``C > 1`` channels (its ``channels``) gets all ``C``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from echoic.data.audio import load_audio
from echoic.embed.base import EmbeddingMethods, EmbeddingModel
from echoic.errors import ConfigError
from echoic.evaluate.task import HearTask

FORMAT = 1
NATIVE_KEYS = ("frames", "frame_offsets", "frame_times_ms")
"""Optional arrays of an event split: the model's native frames (absent in older caches)."""


@dataclass
class SplitEmbeddings:
    """One split's embeddings, files in the split's json order.

    x: scene ``(N, D)``; event ``(sum_i T_i, D)`` (every file's frames, one file after another).
    offsets: event only, ``(N + 1,)`` int64: file i owns rows ``offsets[i]:offsets[i + 1]``.
    timestamps_ms: event only, ``(sum_i T_i,)`` float64 frame times in milliseconds.
    frames / frame_offsets / frame_times_ms: event only, when the model gave them: its native
        frames ``(sum_i K_i, D)`` (file i: ``frame_offsets[i]:frame_offsets[i + 1]``) and their
        times; ``x`` may be their interpolation (:mod:`echoic.evaluate.factored`).
    """

    files: list[str]
    x: np.ndarray
    offsets: np.ndarray | None = None
    timestamps_ms: np.ndarray | None = None
    frames: np.ndarray | None = None
    frame_offsets: np.ndarray | None = None
    frame_times_ms: np.ndarray | None = None


@dataclass
class TaskEmbeddings:
    """Every split of one (model, task), plus how they were made."""

    splits: dict[str, SplitEmbeddings]
    source_rate: int
    model_rate: int
    directory: Path
    embed_seconds: float  # wall time spent embedding in this call (0 when fully cached)
    cached: bool


def slug(text: str, max_len: int = 80) -> str:
    """A file-name-safe version of ``text`` (a short hash keeps distinct long names distinct)."""
    clean = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"
    if len(clean) <= max_len:
        return clean
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return f"{clean[: max_len - 11]}-{digest}"


def choose_source_rate(task: HearTask, model_rate: int) -> int:
    """The task's audio rate to read: the model's if present, else the closest above, else max."""
    rates = task.sample_rates()
    if not rates:
        raise FileNotFoundError(
            f"{task.path}: no audio folder (expected <sample rate>/<split>/ such as 16000/)"
        )
    if model_rate in rates:
        return model_rate
    above = [r for r in rates if r > model_rate]
    return min(above) if above else max(rates)


def cache_directory(cache_root: Path, identity: str, task: HearTask, model_rate: int) -> Path:
    source = choose_source_rate(task, model_rate)
    return Path(cache_root) / slug(identity) / slug(task.key) / f"{model_rate}from{source}"


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".partial.npz")
    np.savez(tmp, allow_pickle=True, **arrays)  # the default, named: **arrays cannot set it
    os.replace(tmp, path)


def _load_split(path: Path, event: bool) -> SplitEmbeddings:
    with np.load(path, allow_pickle=False) as z:
        files = [str(f) for f in z["files"]]
        if event:
            native = [z[k] if k in z.files else None for k in NATIVE_KEYS]
            return SplitEmbeddings(files, z["x"], z["offsets"], z["timestamps_ms"], *native)
        return SplitEmbeddings(files, z["x"])


def _embed_piece(
    model: EmbeddingModel,
    task: HearTask,
    split: str,
    files: list[str],
    source_rate: int,
) -> dict[str, np.ndarray]:
    channels = int(getattr(model, "channels", 1))  # 1: mono models read the channel mean
    waves = []
    for f in files:
        path = task.audio_path(source_rate, split, f)
        x, _ = load_audio(path, sample_rate=model.sample_rate, mono=channels == 1)
        if channels > 1 and x.shape[0] != channels:
            raise ConfigError(
                f"{path}: {x.shape[0]} channel(s), but the model takes {channels}; evaluate it on "
                f"a task of {channels}-channel audio (task_metadata.json 'channels')"
            )
        if x.shape[-1] < model.min_samples:
            x = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, model.min_samples - x.shape[-1])])
        waves.append(x)
    names = np.array(files)
    rate = model.sample_rate
    if not task.is_event:
        if hasattr(model, "scene_embeddings"):  # lets an adapter skip timestamp embeddings
            scene = model.scene_embeddings(waves, sample_rate=rate)
        else:
            scene = torch.stack([e.scene for e in model.embed(waves, sample_rate=rate)])
        return {"files": names, "x": scene.detach().float().cpu().numpy()}
    native: dict[str, np.ndarray] = {}
    if isinstance(model, EmbeddingMethods):  # whole ClipEmbeddings: keep the native frames too
        clips = model.embed(waves, sample_rate=rate)
        pairs = [(e.timestamps, e.timestamps_ms) for e in clips]
        native_frames = [e.frames.detach().float().cpu().numpy() for e in clips]
        native = {
            "frames": np.concatenate(native_frames).astype(np.float32),
            "frame_counts": np.array([f.shape[0] for f in native_frames], dtype=np.int64),
            "frame_times_ms": np.concatenate(
                [e.frame_times_ms.detach().double().cpu().numpy() for e in clips]
            ),
        }
    elif hasattr(model, "timestamp_embeddings"):
        pairs = model.timestamp_embeddings(waves, sample_rate=rate)
    else:
        pairs = [(e.timestamps, e.timestamps_ms) for e in model.embed(waves, sample_rate=rate)]
    frames = [f.detach().float().cpu().numpy() for f, _ in pairs]
    times = [t.detach().double().cpu().numpy() for _, t in pairs]
    counts = np.array([f.shape[0] for f in frames], dtype=np.int64)
    return {
        "files": names,
        "x": np.concatenate(frames).astype(np.float32),
        "counts": counts,
        "timestamps_ms": np.concatenate(times),
        **native,
    }


def _merge(pieces: list[dict[str, np.ndarray]], event: bool) -> dict[str, np.ndarray]:
    merged = {
        "files": np.concatenate([p["files"] for p in pieces]),
        "x": np.concatenate([p["x"] for p in pieces]),
    }
    if event:
        counts = np.concatenate([p["counts"] for p in pieces])
        merged["offsets"] = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        merged["timestamps_ms"] = np.concatenate([p["timestamps_ms"] for p in pieces])
        if all("frames" in p for p in pieces):
            frame_counts = np.concatenate([p["frame_counts"] for p in pieces])
            merged["frames"] = np.concatenate([p["frames"] for p in pieces])
            merged["frame_offsets"] = np.concatenate([[0], np.cumsum(frame_counts)]).astype(
                np.int64
            )
            merged["frame_times_ms"] = np.concatenate([p["frame_times_ms"] for p in pieces])
    return merged


def embed_task(
    model: EmbeddingModel,
    task: HearTask,
    cache_root: str | Path,
    identity: str | None = None,
    piece_clips: int = 64,
    batch_seconds: float = 80.0,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> TaskEmbeddings:
    """Embeddings of every split of ``task`` with ``model``, from the cache or computed (resumable).

    ``identity`` defaults to ``model.identity`` (pass it when already computed: hashing weights
    costs time). ``batch_seconds`` bounds the audio handed to ``model.embed`` per call.
    """
    identity = identity or model.identity
    source_rate = choose_source_rate(task, model.sample_rate)
    directory = cache_directory(Path(cache_root), identity, task, model.sample_rate)
    if isinstance(model, CachedModel):
        model.check_cached(task, directory)
    directory.mkdir(parents=True, exist_ok=True)
    info = {
        "format": FORMAT,
        "model": model.label,
        "identity": identity,
        "task": str(task.path),
        "task_key": task.key,
        "model_rate": model.sample_rate,
        "source_rate": source_rate,
    }
    (directory / "cache_info.json").write_text(json.dumps(info, indent=1) + "\n")
    todo = {s: list(files) for s, files in task.splits.items()}
    missing = {s: f for s, f in todo.items() if not (directory / f"{s}.npz").is_file()}
    start = time.perf_counter()
    if missing and source_rate != model.sample_rate:
        log(
            f"  {task.name}: no {model.sample_rate} Hz audio in the task; resampling its "
            f"{source_rate} Hz audio to {model.sample_rate} Hz for {model.label} (soxr HQ)"
        )
    total = sum(len(f) for f in missing.values())
    bar = tqdm(
        total=total,
        desc=f"embed {task.name}",
        unit="clip",
        disable=not progress or total == 0,
        leave=False,
    )
    duration = float(task.metadata.get("sample_duration") or 10.0)
    per_call = max(1, int(batch_seconds // max(duration, 1e-3)))
    for split, files in missing.items():
        pieces = []
        for k, lo in enumerate(range(0, len(files), piece_clips)):
            part = directory / f"{split}.part{k:05d}.npz"
            chunk = files[lo : lo + piece_clips]
            piece = None
            if part.is_file():
                with np.load(part, allow_pickle=False) as z:
                    piece = {name: z[name] for name in z.files}
                if [str(f) for f in piece["files"]] != chunk:  # made with another piece size
                    piece = None
            if piece is None:
                outs = [
                    _embed_piece(model, task, split, chunk[i : i + per_call], source_rate)
                    for i in range(0, len(chunk), per_call)
                ]
                piece = _merge_pieces(outs, task.is_event)
                _save_npz(part, **piece)
            pieces.append(piece)
            bar.update(len(chunk))
        merged = _merge(pieces, task.is_event) if pieces else _empty(task.is_event)
        _save_npz(directory / f"{split}.npz", **merged)
        for part in directory.glob(f"{split}.part*.npz"):
            part.unlink()
    bar.close()
    seconds = time.perf_counter() - start if missing else 0.0
    splits = {s: _load_split(directory / f"{s}.npz", task.is_event) for s in todo}
    for s, files in todo.items():
        if splits[s].files != [str(f) for f in files]:
            raise RuntimeError(
                f"cache {directory / (s + '.npz')} lists other files than {task.path}/{s}.json; "
                "delete that cache folder and run again"
            )
    return TaskEmbeddings(splits, source_rate, model.sample_rate, directory, seconds, not missing)


def _merge_pieces(outs: list[dict[str, np.ndarray]], event: bool) -> dict[str, np.ndarray]:
    merged = {
        "files": np.concatenate([o["files"] for o in outs]),
        "x": np.concatenate([o["x"] for o in outs]),
    }
    if event:
        merged["counts"] = np.concatenate([o["counts"] for o in outs])
        merged["timestamps_ms"] = np.concatenate([o["timestamps_ms"] for o in outs])
        if all("frames" in o for o in outs):
            for key in ("frames", "frame_counts", "frame_times_ms"):
                merged[key] = np.concatenate([o[key] for o in outs])
    return merged


def _empty(event: bool) -> dict[str, np.ndarray]:
    out = {"files": np.array([], dtype=str), "x": np.zeros((0, 0), np.float32)}
    if event:
        out["offsets"] = np.zeros(1, np.int64)
        out["timestamps_ms"] = np.zeros(0)
    return out


class CachedModel:
    """A model known only by its cached embeddings: probes run without its weights or code.

    Made from one ``<cache>/<model identity>/`` folder (e.g. embeddings computed on one machine,
    probes trained on another, with a GPU). Every task evaluated must be in that folder; nothing
    can be embedded.
    """

    def __init__(self, directory: str | Path, name: str | None = None) -> None:
        self.directory = Path(directory)
        infos = sorted(self.directory.glob("*/*/cache_info.json"))
        if not infos:
            raise ConfigError(
                f"{self.directory}: expected a cached model folder <cache>/<identity>/ holding "
                "<task>/<rate>from<rate>/cache_info.json (written by echoic eval); found none"
            )
        info = json.loads(infos[0].read_text())
        self.identity: str = str(info["identity"])
        if slug(self.identity) != self.directory.name:
            raise ConfigError(
                f"{self.directory}: its cache_info.json names identity {self.identity!r}, whose "
                f"folder would be {slug(self.identity)!r}; pass the folder echoic eval wrote"
            )
        self.label: str = name or str(info["model"])
        self.sample_rate: int = int(info["model_rate"])
        self.min_samples = 1
        npz = sorted(infos[0].parent.glob("*.npz"))
        self.embedding_size = 0
        if npz:
            with np.load(npz[0], allow_pickle=False) as z:
                self.embedding_size = int(z["x"].shape[1])

    @property
    def cache_root(self) -> Path:
        return self.directory.parent

    def check_cached(self, task: HearTask, directory: Path) -> None:
        missing = [s for s in task.splits if not (directory / f"{s}.npz").is_file()]
        if missing:
            raise ConfigError(
                f"cached model {self.label}: task {task.name} split(s) {missing} are not in "
                f"{directory} (expected <split>.npz for key {slug(task.key)}); embed the task "
                "with the model itself first (echoic eval --model ...), then copy its cache folder"
            )

    def embed(self, waveforms: object, sample_rate: int | None = None) -> list:
        raise RuntimeError(f"cached model {self.label} has no weights: it cannot embed audio")


def cached_model(spec: str) -> CachedModel:
    """``NAME=DIR`` or ``DIR`` (the name then comes from the cache) → :class:`CachedModel`."""
    name, sep, path = spec.partition("=")
    return CachedModel(path, name) if sep and name else CachedModel(spec)
