"""Pretraining data: clip lists from files, folders and manifests; random crops; a resumable stream.

Determinism without RNG state: the stream is a sequence of global clip numbers ``g``; rank ``r``
of ``W`` takes ``g = j * W + r`` for ``j = start, start + 1, ...``. Clip number ``g`` is position
``g mod n`` of epoch ``g div n`` (a permutation seeded by ``(seed, epoch)``), and its crops come
from a generator seeded by ``(seed, epoch, position)``. A batch is therefore a pure function of
the seed and how many batches came before it — whatever the worker count, worker seeds or
restarts — and resuming only needs that count.

Corrupt or unreadable files (and clips shorter than one analysis window) are skipped: the item
falls through to the next clip of the permutation, and the skipped paths travel with the batch so
the trainer can count them. Only ``max_consecutive_failures`` failures in a row stop training.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import logging
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from echoic.data.audio import AUDIO_EXTENSIONS, audio_info, load_audio, require_min_samples
from echoic.data.discover import find_audio
from echoic.data.locate import shared_data_dir
from echoic.errors import AudioError, ConfigError, EchoicError

__all__ = [
    "Clip",
    "CropDataset",
    "StreamSampler",
    "build_dataloader",
    "collate_crops",
    "data_hash",
    "list_clips",
]

log = logging.getLogger(__name__)

PATH_COLUMNS = ("file", "path", "audio_filepath", "audio_path", "filename")
MANIFEST_SUFFIXES = (".csv", ".tsv", ".txt", ".lst", ".jsonl", ".jsonl.gz", ".json.gz")
WHOLE_FILE_LIMIT_S = 60.0  # load whole clips up to this long (or 4 crops); seek into longer ones


@dataclass(frozen=True)
class Clip:
    """One training clip: a file, or a segment ``[start_s, start_s + duration_s)`` of one.

    key: location-independent identity used by :func:`data_hash` (path relative to its folder or
    manifest, plus the segment).
    """

    path: str
    key: str
    start_s: float = 0.0
    duration_s: float | None = None


# --------------------------------------------------------------------------- listing
def _resolve(source: str) -> Path:
    if source.startswith("shared:"):
        root = shared_data_dir(required=True)
        assert root is not None
        return root / source[len("shared:") :]
    return Path(os.path.expandvars(os.path.expanduser(source)))


def _is_manifest(path: Path) -> bool:
    name = path.name.lower()
    return (
        path.is_file()
        and name.endswith(MANIFEST_SUFFIXES)
        and not name.endswith(tuple(AUDIO_EXTENSIONS))
    )


def _entry(base: Path, raw: str, start: Any = None, duration: Any = None) -> Clip:
    p = Path(raw)
    full = p if p.is_absolute() else base / p
    start_s = float(start) if start not in (None, "") else 0.0
    dur = float(duration) if duration not in (None, "") else None
    key = raw if (not start_s and dur is None) else f"{raw}@{start_s:g}+{dur}"
    return Clip(path=str(full), key=key, start_s=start_s, duration_s=dur)


def _read_table(path: Path) -> list[Clip]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter=delimiter))
    if not rows:
        return []
    column = next((c for c in PATH_COLUMNS if c in rows[0]), None)
    if column is None:
        raise ConfigError(
            f"{path}: manifest has no path column; expected one of {', '.join(PATH_COLUMNS)}, "
            f"found {', '.join(rows[0])}."
        )
    start_col = next((c for c in ("start", "offset") if c in rows[0]), None)
    return [
        _entry(path.parent, r[column], r.get(start_col) if start_col else None, r.get("duration"))
        for r in rows
        if r.get(column)
    ]


def _read_jsonl(path: Path) -> list[Clip]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    clips = []
    with opener(path, "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            item = json.loads(line)
            if "recording" in item and isinstance(item["recording"], dict):  # lhotse cut
                rec = item["recording"]
                raw = rec["sources"][0]["source"]
                clips.append(_entry(path.parent, raw, item.get("start"), item.get("duration")))
            elif "sources" in item:  # lhotse recording
                clips.append(_entry(path.parent, item["sources"][0]["source"]))
            else:
                column = next((c for c in PATH_COLUMNS if c in item), None)
                if column is None:
                    raise ConfigError(
                        f"{path}:{n}: expected a lhotse recording/cut (with its recording inline) "
                        f"or an object with one of {', '.join(PATH_COLUMNS)}; found keys "
                        f"{sorted(item)}."
                    )
                start = item.get("start", item.get("offset"))
                clips.append(_entry(path.parent, item[column], start, item.get("duration")))
    return clips


def _read_list(path: Path) -> list[Clip]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [_entry(path.parent, s.strip()) for s in lines if s.strip() and not s.startswith("#")]


def list_clips(sources: Sequence[str], max_files: int | None = None) -> list[Clip]:
    """Expand files, folders and manifests into clips, in a deterministic order.

    Folders are walked with :func:`echoic.data.find_audio` (sorted); manifests keep their row
    order; duplicates are kept (a manifest may list a file twice on purpose).
    """
    if not sources:
        raise ConfigError(
            "data.train is empty; expected audio files, folders or manifests, e.g. "
            "--data.train '[shared:gcompris_voices/audio]'."
        )
    clips: list[Clip] = []
    for source in sources:
        path = _resolve(str(source))
        if not path.exists():
            raise ConfigError(f"data.train entry {source!r} does not exist ({path}).")
        if path.is_dir():
            for f in find_audio([path]):
                clips.append(Clip(path=str(f), key=f.relative_to(path).as_posix()))
        elif _is_manifest(path):
            name = path.name.lower()
            if name.endswith((".csv", ".tsv")):
                clips.extend(_read_table(path))
            elif name.endswith((".jsonl", ".jsonl.gz", ".json.gz")):
                clips.extend(_read_jsonl(path))
            else:
                clips.extend(_read_list(path))
        else:
            clips.append(Clip(path=str(path), key=path.name))
    if max_files is not None:
        clips = clips[:max_files]
    if not clips:
        raise ConfigError(f"no audio found in data.train {list(sources)}; check the paths.")
    return clips


def data_hash(clips: Sequence[Clip]) -> str:
    """``sha256:<16 hex>`` of the clip keys and file sizes, in order (location-independent)."""
    digest = hashlib.sha256()
    for clip in clips:
        try:
            size = os.stat(clip.path).st_size
        except OSError:
            size = -1
        digest.update(f"{clip.key}\t{size}\n".encode())
    return f"sha256:{digest.hexdigest()[:16]}"


# --------------------------------------------------------------------------- dataset
class CropDataset(Dataset):
    """Global clip number → ``views`` random crops of ``crop_s`` seconds of one readable clip.

    Returns ``{"audio": (V, S) float32, "lengths": (V,) int64, "clip": index into clips of the
    clip read, "number": the global clip number asked for, "failed": [paths skipped]}``;
    with ``channels = C > 1`` (a multichannel frontend) ``audio`` is ``(V, C, S)``, every channel
    cropped at the same offset, and files of another channel count are skipped as unreadable.
    """

    def __init__(
        self,
        clips: Sequence[Clip],
        sample_rate: int,
        crop_s: float,
        views: int = 1,
        pad: str = "repeat",
        seed: int = 0,
        shuffle: bool = True,
        min_samples: int = 1,
        max_consecutive_failures: int = 100,
        channels: int = 1,
    ) -> None:
        self.clips = list(clips)
        self.channels = int(channels)
        self.sample_rate = int(sample_rate)
        self.crop = max(1, round(crop_s * sample_rate))
        self.views = views
        self.pad = pad
        self.seed = seed
        self.shuffle = shuffle
        self.min_samples = min_samples
        self.max_failures = max_consecutive_failures
        self._perm_epoch = -1
        self._perm = np.arange(len(self.clips))
        self._bad: set[str] = set()

    def __len__(self) -> int:
        return len(self.clips)

    def permutation(self, epoch: int) -> np.ndarray:
        if epoch != self._perm_epoch:
            n = len(self.clips)
            rng = np.random.default_rng([self.seed, epoch])
            self._perm = rng.permutation(n) if self.shuffle else np.arange(n)
            self._perm_epoch = epoch
        return self._perm

    def __getitem__(self, number: int) -> dict[str, Any]:
        n = len(self.clips)
        epoch, position = divmod(int(number), n)
        perm = self.permutation(epoch)
        rng = np.random.default_rng([self.seed, epoch, position, 1])
        failed: list[str] = []
        for attempt in range(min(self.max_failures, n) + 1):
            index = int(perm[(position + attempt) % n])
            clip = self.clips[index]
            if clip.path in self._bad:
                failed.append(clip.path)
                continue
            try:
                audio, lengths = self.load_crops(clip, rng)
            except (AudioError, OSError, RuntimeError, ValueError) as err:
                self._bad.add(clip.path)
                failed.append(clip.path)
                log.warning("skipping unreadable training file: %s", err)
                continue
            return {
                "audio": audio,
                "lengths": lengths,
                "clip": index,
                "number": int(number),
                "failed": failed,
            }
        raise EchoicError(
            f"{len(failed)} training files in a row could not be read (last: {failed[-1]}); "
            "expected mostly readable audio. Check data.train, or raise "
            "data.max_consecutive_failures."
        )

    def load_crops(self, clip: Clip, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``(V, crop)`` (``(V, C, crop)`` for ``C`` channels) float32 crops and ``(V,)`` valid
        lengths of one clip."""
        sr, crop = self.sample_rate, self.crop
        shape = (crop,) if self.channels == 1 else (self.channels, crop)
        duration = clip.duration_s
        if duration is None:
            info = audio_info(clip.path)
            if info.frames >= 0:
                duration = max(info.frames / info.sample_rate - clip.start_s, 0.0)
        out = np.zeros((self.views, *shape), dtype=np.float32)
        lengths = np.full(self.views, crop, dtype=np.int64)
        crop_s = crop / sr
        if duration is not None and duration > max(4 * crop_s, WHOLE_FILE_LIMIT_S):
            span = round(duration * sr)  # long file: decode only the crops
            for v in range(self.views):
                offset = int(rng.integers(0, span - crop + 1))
                x = self.load(clip, offset_s=clip.start_s + offset / sr, duration_s=crop_s)
                out[v, ..., : min(crop, x.shape[-1])] = x[..., :crop]
            return out, lengths
        x = self.load(clip, offset_s=clip.start_s, duration_s=clip.duration_s)
        require_min_samples(x, self.min_samples, clip.path)
        n = int(x.shape[-1])
        for v in range(self.views):
            if n >= crop:
                offset = int(rng.integers(0, n - crop + 1))
                out[v] = x[..., offset : offset + crop]
            elif self.pad == "repeat":  # tiles the clip
                out[v] = np.tile(x, (1,) * (x.ndim - 1) + (-(-crop // n),))[..., :crop]
            else:
                out[v, ..., :n] = x
                lengths[v] = n
        return out, lengths

    def load(self, clip: Clip, offset_s: float, duration_s: float | None) -> np.ndarray:
        """``(S,)`` mono (mixed down), or ``(C, S)`` for ``channels = C > 1`` (checked)."""
        mono = self.channels == 1
        x, _ = load_audio(
            clip.path, self.sample_rate, mono=mono, offset_s=offset_s, duration_s=duration_s
        )
        if not mono and x.shape[0] != self.channels:
            raise AudioError(
                clip.path,
                f"{x.shape[0]} channel(s), but the frontend takes {self.channels}",
                f"train on {self.channels}-channel files, or set the frontend's channels to "
                f"{x.shape[0]}",
            )
        return x


class StreamSampler(Sampler[int]):
    """Endless clip numbers of one rank: ``j * world_size + rank`` for ``j = start(), ...``.

    ``start`` is read when iteration begins (after a checkpoint has been restored).
    """

    def __init__(self, start: Callable[[], int] | int = 0, rank: int = 0, world_size: int = 1):
        self._start = start
        self.rank = rank
        self.world_size = world_size

    def __iter__(self) -> Iterator[int]:
        j = self._start() if callable(self._start) else int(self._start)
        while True:
            yield j * self.world_size + self.rank
            j += 1


def collate_crops(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack items clip-major: ``waveform (B * V, S)``, ``lengths (B * V,)``, ``clip_index`` and
    ``view_index`` ``(B * V,)`` (which clip of the batch, and which of its views, each row is),
    and the ``failed`` paths."""
    views = [len(it["lengths"]) for it in items]
    return {
        "waveform": torch.from_numpy(np.concatenate([it["audio"] for it in items])),
        "lengths": torch.from_numpy(np.concatenate([it["lengths"] for it in items])),
        "clip_index": torch.from_numpy(np.repeat(np.arange(len(items)), views)),
        "view_index": torch.from_numpy(np.concatenate([np.arange(v) for v in views])),
        "failed": [p for it in items for p in it["failed"]],
    }


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)
    # a SIGTERM sent to the whole process group (SLURM, a terminal) is for the training process:
    # it saves a checkpoint at the end of the step (echoic.train.checkpoints) while the workers
    # go on feeding it; they exit with it
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def build_dataloader(
    dataset: CropDataset,
    batch_size: int,
    start: Callable[[], int] | int = 0,
    rank: int = 0,
    world_size: int = 1,
    num_workers: int = 0,
    pin_memory: bool = False,
    collate_fn: Callable[[list[dict[str, Any]]], dict[str, Any]] = collate_crops,
) -> DataLoader:
    """An endless loader of ``batch_size`` clips per batch for one rank (no ``len``);
    ``collate_fn`` runs in the workers (paired data tokenizes its captions there)."""
    sampler = StreamSampler(start, rank, world_size)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_fn,
        pin_memory=pin_memory,
        worker_init_fn=_worker_init if num_workers else None,
        persistent_workers=False,
        prefetch_factor=2 if num_workers else None,
    )
