"""Write a builder's plan as a HEAR task directory: deterministic, atomic, resumable.

* Every file is written to a temporary name in its final folder and renamed into place, so an
  interrupted build never leaves a truncated file under a real name.
* A wav that already exists is not rendered again; re-running a finished build only rewrites the
  (identical) metadata files, which are compared first and left untouched when equal.
* Bytes are a function of the data, the task version and the sample rate only: sorted inputs,
  fixed seeds, JSON with sorted keys, no timestamps; wav files carry a plain 44-byte header.
* Audio is converted to 16-bit PCM by ``round(x * 32767)``; a clip whose decoded peak exceeds
  full scale (lossy codecs overshoot: 238 ESC-50 clips, a few drums and guitar strums) is scaled
  down to peak 1.0 instead of being clipped.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from tqdm import tqdm

from echoic.tasks.base import MODES, TASKS, Clip, TaskBuilder, TaskDataError, n_samples

TMP_SUFFIX = ".partial"


@dataclass
class BuildResult:
    """What one task build did."""

    name: str
    directory: Path
    clips: int
    rendered: int
    seconds: float
    bytes: int
    audio_seconds: float


def get_builder(name: str) -> TaskBuilder:
    """An instance of the builder registered as ``name`` (unknown names list the valid ones)."""
    return TASKS.get(name)()


def task_names() -> list[str]:
    return TASKS.names()


def atomic_write_bytes(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` via a temporary file + rename; skip (False) if already equal."""
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return True


def pcm16_wav_bytes(x: np.ndarray, sample_rate: int) -> bytes:
    """``(S,)`` mono or ``(C, S)`` float audio → the bytes of a 16-bit PCM wav (scaled down if it
    would clip; all channels by one factor, so level differences between channels are kept)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x.T  # soundfile writes (S, C)
    if not np.all(np.isfinite(x)):
        raise ValueError("audio to write has NaN or inf samples; expected finite floats")
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > 1.0:
        x = x / peak
    pcm = np.clip(np.round(x * 32767.0), -32768, 32767).astype("<i2")
    buf = io.BytesIO()
    sf.write(buf, pcm, sample_rate, subtype="PCM_16", format="WAV")
    return buf.getvalue()


def json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def split_content(clips: Sequence[Clip], split: str, event_task: bool) -> dict[str, Any]:
    """``<split>.json``: scene → ``{file: [labels]}``; event → ``{file: [{label,start,end}]}``."""
    out: dict[str, Any] = {}
    for c in clips:
        if c.split != split:
            continue
        if event_task:
            out[c.name] = [
                {"label": e.label, "start": round(e.start, 3), "end": round(e.end, 3)}
                for e in c.events
            ]
        else:
            out[c.name] = list(c.labels)
    return out


def check_plan(builder: TaskBuilder, clips: Sequence[Clip]) -> None:
    info = builder.info
    splits = set(info.splits())
    names: set[str] = set()
    for c in clips:
        if c.split not in splits:
            raise ValueError(f"task {info.name}: clip {c.name} in unknown split {c.split!r}")
        if c.name in names:
            raise ValueError(f"task {info.name}: two clips are named {c.name}; expected unique")
        names.add(c.name)
    empty = sorted(splits - {c.split for c in clips})
    if empty:
        raise TaskDataError(f"task {info.name}: splits {empty} have no clips; check the data set")


def build_task(
    builder: TaskBuilder,
    out_dir: Path,
    data_dir: Path,
    sample_rate: int = 16000,
    mode: str = "full",
    progress: bool = True,
) -> BuildResult:
    """Build (or finish) one task under ``out_dir``; returns what was done."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}; found {mode!r}")
    start = time.perf_counter()
    info = builder.info
    builder.check_data(data_dir)
    clips = builder.plan(data_dir, mode)
    task_dir = Path(out_dir) / info.directory_name(mode)
    clips = builder.annotate(clips, data_dir, task_dir)
    check_plan(builder, clips)
    audio_dir = task_dir / str(sample_rate)
    for split in info.splits():
        (audio_dir / split).mkdir(parents=True, exist_ok=True)
    missing = [c for c in clips if not (audio_dir / c.split / c.name).is_file()]
    length = n_samples(info.sample_duration, sample_rate)
    expected = (length,) if info.channels == 1 else (info.channels, length)
    bar = tqdm(total=len(missing), desc=info.name, unit="clip", disable=not progress, leave=False)
    for clip, audio in builder.render(missing, data_dir, sample_rate):
        if audio.shape != expected:
            raise ValueError(
                f"task {info.name}: {clip.name} rendered {audio.shape}; expected {expected}"
            )
        atomic_write_bytes(audio_dir / clip.split / clip.name, pcm16_wav_bytes(audio, sample_rate))
        bar.update(1)
    bar.close()
    event_task = info.embedding_type == "event"
    atomic_write_bytes(task_dir / "task_metadata.json", json_bytes(info.metadata(mode)))
    vocab = builder.vocabulary(clips)
    rows = "idx,label\n" + "".join(f"{i},{_csv_field(label)}\n" for i, label in enumerate(vocab))
    atomic_write_bytes(task_dir / "labelvocabulary.csv", rows.encode())
    for split in info.splits():
        content = split_content(clips, split, event_task)
        atomic_write_bytes(task_dir / f"{split}.json", json_bytes(content))
    atomic_write_bytes(task_dir / "sources.csv", sources_csv(clips))
    for name, data in builder.extra_files(clips).items():
        atomic_write_bytes(task_dir / name, data)
    size = sum(p.stat().st_size for p in task_dir.glob("*") if p.is_file())
    size += sum(p.stat().st_size for p in audio_dir.rglob("*.wav"))
    return BuildResult(
        name=info.name,
        directory=task_dir,
        clips=len(clips),
        rendered=len(missing),
        seconds=time.perf_counter() - start,
        bytes=size,
        audio_seconds=len(clips) * info.sample_duration,
    )


def sources_csv(clips: Sequence[Clip]) -> bytes:
    """``sources.csv``: split, output file and its source files (``;``-joined, relative to the data
    folder) for every clip — provenance for attribution, not read by HEAR tools."""
    lines = ["split,file,sources"]
    lines += [f"{c.split},{c.name},{_csv_field(';'.join(c.sources))}" for c in clips]
    return ("\n".join(lines) + "\n").encode()


def _csv_field(text: str) -> str:
    if any(ch in text for ch in ',"\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def build_tasks(
    names: Sequence[str] | None,
    out_dir: Path,
    data_dir: Path,
    sample_rate: int = 16000,
    mode: str = "full",
    progress: bool = True,
    on_done: Callable[[BuildResult], None] | None = None,
) -> list[BuildResult]:
    """Build several tasks (default: every registered one, in name order)."""
    chosen = list(dict.fromkeys(names)) if names else task_names()
    builders = [get_builder(name) for name in chosen]  # unknown names fail before any work
    results = []
    for builder in builders:
        result = build_task(builder, out_dir, data_dir, sample_rate, mode, progress)
        results.append(result)
        if on_done is not None:
            on_done(result)
    return results
