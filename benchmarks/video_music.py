"""Video–music retrieval on animated score frames ↔ audio (issue 23 item 6; seeds 14 and 23).

    OMP_NUM_THREADS=1 python benchmarks/video_music.py --seeds 0,1,2 --minutes 0.5 \\
        --frame-encoder results/sheet_retrieval/ssl-seed0 --work results/video_music

No real video is evaluated (none can be had offline): each ``sheet_snippets`` snippet becomes a
short frame sequence of its engraving with a cursor crossing it in time with the audio
(:mod:`echoic.tasks.score_frames`; ``--fps``, ``--window``: the follow view, a camera window
centred on the cursor, or ``--window 0``: the whole page), and its clip is the music.

* Visual stream: every frame through a frozen image tower, ``--frame-encoder``: the image tower of
  a saved :class:`~echoic.objectives.sheet.SheetModel` (``benchmarks/sheet_retrieval.py`` writes
  them; trained on the train split only) or ``random`` (``sheet_cnn_tiny``, seed 0, untrained).
* Music stream: the frozen ``--music-model`` (default ``echoic-tiny``), its last layer's frames
  (mean over frequency, 0.16 s apart) up to the snippet's end.
* Labels (:mod:`echoic.tasks.sheet_labels`): metre × mode of each snippet (4 classes, all in every
  split). Prompts: those labels worded by templates, embedded by frozen ``minilm``.
* Models (:mod:`echoic.objectives.video_music`): ``semi_supervised`` (scored at α = 0, 0.5, 1)
  and ``trimodal`` (scored with no prompt, the right prompt and a wrong one: every attribute it
  names flipped), each at random init and trained ``--minutes`` CPU-minutes per seed on train, the
  checkpoint picked on valid, scored on test (held-out composers).

Streams are computed once and cached in ``WORK/streams-<key>.safetensors``; each run's scores go to
``WORK/<model>-<init>-seed<seed>.json`` (a finished run is not redone), trained models to
``WORK/<model>-seed<seed>/``. Prints the tables (mean ± std over seeds) and chance levels.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from _table import cell
from echoic.evaluate.video_music import alpha_sweep, chance_agreement, prompt_sweep
from echoic.objectives.video_music import (
    SemiSupervisedModel,
    StreamConfig,
    VideoMusicModel,
    pad_streams,
    visual_stream,
)
from echoic.objectives.video_music_text import TrimodalModel
from echoic.tasks.paths import default_data_dir
from echoic.tasks.score_frames import CursorConfig, render_frames
from echoic.tasks.sheet_labels import LABEL_NAMES, METRES, MODES, PROMPT_KINDS, snippet_labels
from echoic.tasks.sheet_labels import prompt_text as prompt
from echoic.tasks.sheet_pairs import read_sheet_pairs
from echoic.tasks.writer import build_task, get_builder
from echoic.train.video_music import (
    StreamSet,
    VideoMusicTrainConfig,
    build_model,
    held_out_loss,
)
from echoic.train.video_music import train_video_music as train
from echoic.vision import ImageEncoder, build_image_encoder

ROOT = Path(__file__).resolve().parents[1]
SPLITS = ("train", "valid", "test")
ALPHAS = (0.0, 0.5, 1.0)
TEMPLATES = 2
COLUMNS = (
    ("v2m_R@1", "v→m R@1"),
    ("v2m_R@5", "v→m R@5"),
    ("v2m_MRR", "v→m MRR"),
    ("m2v_R@1", "m→v R@1"),
    ("m2v_R@5", "m→v R@5"),
    ("m2v_MRR", "m→v MRR"),
    ("v2m_agree@5", "label agree@5 (v→m)"),
)
PROMPT_COLUMNS = (
    ("v2m_R@1", "v→m R@1"),
    ("v2m_R@5", "v→m R@5"),
    ("v2m_MRR", "v→m MRR"),
    ("prompt_match@5", "prompt match@5"),
)


# ------------------------------------------------------------------ streams
def task_dir(args: argparse.Namespace) -> Path:
    builder = get_builder("sheet_snippets")
    folder = args.tasks_dir / builder.info.directory_name("full")
    if not (folder / "pairs.csv").is_file():
        result = build_task(builder, args.tasks_dir, default_data_dir(), mode="full")
        print(f"built {result.directory}: {result.clips} clips", flush=True)
    return folder


def frame_tower(spec: str, width: int) -> tuple[ImageEncoder, str]:
    """The frozen frame encoder and a digest of its weights (module docstring)."""
    if spec == "random":
        torch.manual_seed(0)
        tower = build_image_encoder("sheet_cnn_tiny", width=width)
    else:
        folder = Path(spec)
        meta_path = folder / "image_tower.json"
        if not meta_path.is_file():
            sys.exit(
                f"--frame-encoder {spec}: expected a SheetModel directory with image_tower.json; "
                "found none. Fix: python benchmarks/sheet_retrieval.py --conditions ssl --seeds 0, "
                "or --frame-encoder random"
            )
        meta = json.loads(meta_path.read_text())
        tower = build_image_encoder(meta["name"], **{**meta["config"], "width": width})
        tower.load_state_dict(load_file(str(folder / "image_tower.safetensors")), strict=True)
    digest = hashlib.sha256()
    for name, tensor in sorted(tower.state_dict().items()):
        digest.update(name.encode() + tensor.numpy().tobytes())
    return tower.eval(), digest.hexdigest()[:16]


def build_streams(folder: Path, args: argparse.Namespace) -> dict[str, StreamSet]:
    from echoic.embed.embedder import Embedder
    from echoic.text import build_text_encoder

    cursor = CursorConfig(fps=args.fps, window_px=args.window or None)
    width = args.window or 384
    tower, tower_key = frame_tower(args.frame_encoder, width)
    embedder = Embedder(args.music_model, chunk_s=5.12, overlap_s=0.0, freq_pool="mean")
    texts = [
        prompt(metre, mode, kind, t)
        for kind in PROMPT_KINDS
        for metre in METRES
        for mode in MODES
        for t in range(TEMPLATES)
    ]
    table = hashlib.sha256((folder / "pairs.csv").read_bytes()).hexdigest()[:16]
    key = hashlib.sha256(
        json.dumps([tower_key, vars(cursor), embedder.identity, table, texts, "v1"]).encode()
    ).hexdigest()[:16]
    cache = args.work / f"streams-{key}.safetensors"
    if not cache.is_file():
        start = time.process_time()
        tensors: dict[str, torch.Tensor] = {}
        tensors["prompts"] = build_text_encoder("minilm").embed(texts).float()
        for split in SPLITS:
            pairs = read_sheet_pairs(folder, split)
            labels = snippet_labels(folder, split)
            frames = [
                render_frames(image, float(d), cursor)
                for image, d in zip(pairs.images, pairs.durations_s, strict=True)
            ]
            visual = visual_stream(tower, frames)
            clips = embedder.embed([w.astype(np.float32) / 32768.0 for w in pairs.audio])
            music = [
                c.frames[: max(1, int((c.frame_times_ms <= 1000.0 * d).sum()))]
                for c, d in zip(clips, pairs.durations_s, strict=True)
            ]
            for name, stream in (("visual", visual), ("music", music)):
                padded, lens = pad_streams(stream)
                tensors[f"{split}.{name}"], tensors[f"{split}.{name}_lens"] = padded, lens
            index = [LABEL_NAMES.index(label.name) for label in labels]
            tensors[f"{split}.labels"] = torch.tensor(index)
            # the prompts true of each clip: (metre, mode, both) × templates, rows of `texts`
            tensors[f"{split}.choices"] = torch.tensor(
                [
                    [texts.index(prompt(lab.metre, lab.mode, kind, t)) for kind in PROMPT_KINDS]
                    for lab in labels
                    for t in range(TEMPLATES)
                ]
            ).reshape(len(labels), -1)
        args.work.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(cache))
        print(f"streams: {cache.name} in {time.process_time() - start:.0f} CPU-s", flush=True)
    tensors = load_file(str(cache))
    args.texts = texts
    return {
        split: StreamSet(
            *(tensors[f"{split}.{f}"] for f in ("visual", "visual_lens", "music", "music_lens")),
            labels=tensors[f"{split}.labels"],
            prompts=tensors["prompts"],
            prompt_choices=tensors[f"{split}.choices"],
        )
        for split in SPLITS
    }


# ------------------------------------------------------------------ prompts
def prompt_conditions(data: StreamSet, texts: list[str]) -> dict[str, tuple[Any, np.ndarray]]:
    """``none`` and, for each prompt kind, ``right`` (the clip's own labels) and ``wrong`` (every
    attribute the prompt names flipped): prompt embeddings and the items each prompt fits."""
    assert data.prompts is not None
    names = [LABEL_NAMES[int(i)].split() for i in data.labels]  # [metre, mode]
    out: dict[str, tuple[Any, np.ndarray]] = {"none": (None, np.ones((len(data),) * 2, bool))}
    flip = {"duple": "triple", "triple": "duple", "major": "minor", "minor": "major"}
    for kind in PROMPT_KINDS:
        for case in ("right", "wrong"):
            asked = []
            for metre, mode in names:
                if case == "wrong":
                    metre = flip[metre] if kind in ("metre", "both") else metre
                    mode = flip[mode] if kind in ("mode", "both") else mode
                asked.append((metre, mode))
            text = data.prompts[[texts.index(prompt(m, d, kind)) for m, d in asked]]
            part = {"metre": [0], "mode": [1], "both": [0, 1]}[kind]
            matches = np.array(
                [[all(n[p] == a[p] for p in part) for n in names] for a in asked], dtype=bool
            )
            out[f"{case} {kind}"] = (text, matches)
    return out


def score(model: VideoMusicModel, data: StreamSet, texts: list[str]) -> dict[str, Any]:
    visual, music = (data.visual, data.visual_lens), (data.music, data.music_lens)
    if isinstance(model, SemiSupervisedModel):
        return alpha_sweep(model, visual, music, data.labels.tolist(), ALPHAS)
    assert isinstance(model, TrimodalModel)
    return prompt_sweep(model, visual, music, prompt_conditions(data, texts))


def model_config(name: str, data: StreamSet, args: argparse.Namespace) -> dict[str, Any]:
    stream = StreamConfig(width=args.width, temporal=args.temporal)
    config: dict[str, Any] = {
        "visual_dim": data.visual.shape[-1],
        "music_dim": data.music.shape[-1],
        "stream": vars(stream),
        "dim": 64,
    }
    if name == "semi_supervised":
        config["labels"] = len(LABEL_NAMES)
    else:
        assert data.prompts is not None
        config["text_dim"] = data.prompts.shape[-1]
    return config


def run_one(
    name: str, init: str, seed: int, sets: dict[str, StreamSet], args: argparse.Namespace
) -> dict[str, Any]:
    out = args.work / f"{name}-{init}-seed{seed}.json"
    if out.is_file():
        return dict(json.loads(out.read_text()))
    config = VideoMusicTrainConfig(
        model=name,
        model_config=model_config(name, sets["train"], args),
        seed=seed,
        cpu_minutes=args.minutes,
        batch_size=args.batch_size,
        lr=args.lr,
        eval_every=25,
    )
    start = time.process_time()
    summary: dict[str, Any] = {}
    if init == "random":
        torch.manual_seed(seed)
        model = build_model(name, config.model_config).eval()
    else:

        def validate(m: VideoMusicModel) -> float:
            return -held_out_loss(m, sets["valid"])

        chooser = validate if args.select == "valid_loss" else None
        result = train(config, sets["train"], chooser, log=lambda line: print(line, flush=True))
        model, summary = result.model, result.summary()
        model.save(args.work / f"{name}-seed{seed}", seed=seed, minutes=args.minutes)
    record = {
        "model": name,
        "init": init,
        "seed": seed,
        "test": score(model, sets["test"], args.texts),
        "train_cpu_s": round(time.process_time() - start, 1),
        "train": summary,
    }
    args.work.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")
    return record


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tasks-dir", type=Path, default=ROOT / "tasks")
    p.add_argument("--work", type=Path, default=ROOT / "results" / "video_music")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--minutes", type=float, default=0.5, help="CPU-minutes per trained run")
    p.add_argument("--frame-encoder", default=str(ROOT / "results/sheet_retrieval/ssl-seed0"))
    p.add_argument("--music-model", default="echoic-tiny")
    p.add_argument("--fps", type=float, default=4.0)
    p.add_argument("--window", type=int, default=128, help="follow-view width; 0: page view")
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--temporal", default="transformer", choices=("attention", "transformer"))
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--models", default="semi_supervised,trimodal")
    p.add_argument(
        "--select",
        default="valid_loss",
        choices=("valid_loss", "last"),
        help="the checkpoint kept: lowest valid-split loss, or the last step",
    )
    args = p.parse_args()
    torch.set_num_threads(1)
    args.work, args.tasks_dir = args.work.resolve(), args.tasks_dir.resolve()
    print("$ " + shlex.join([Path(sys.executable).name, *sys.argv]), flush=True)
    wall, cpu = time.time(), time.process_time()
    sets = build_streams(task_dir(args), args)
    seeds = [int(s) for s in args.seeds.split(",")]
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    models = [m for m in args.models.split(",") if m]
    for name in models:
        for init in ("random", "trained"):
            for seed in seeds:
                record = run_one(name, init, seed, sets, args)
                runs.setdefault((name, init), []).append(record)
    test = sets["test"]
    labels = test.labels.tolist()
    counts = {LABEL_NAMES[c]: labels.count(c) for c in range(len(LABEL_NAMES))}
    n = len(test)
    print(
        f"\nsheet_snippets test split: {n} snippets (held-out composers), labels {counts}; "
        f"seeds {args.seeds}; {args.minutes:g} CPU-min per trained run; frames {args.fps:g} fps, "
        f"{'window ' + str(args.window) + ' px' if args.window else 'page view'}; "
        f"{args.temporal} pooling; checkpoint: {args.select}; one CPU thread; "
        f"{time.process_time() - cpu:.0f} CPU-s, "
        f"{time.time() - wall:.0f} s wall this invocation\n"
    )
    mrr = float(np.sum(1.0 / np.arange(1, n + 1)) / n)
    if "semi_supervised" in models:
        semi_table(runs, labels, n, mrr)
    if "trimodal" in models:
        trimodal_table(runs, test, args.texts, n, mrr)


def semi_table(
    runs: dict[tuple[str, str], list[dict[str, Any]]], labels: list[int], n: int, mrr: float
) -> None:
    print("semi_supervised (seed 14): similarity = α·self + (1−α)·label\n")
    print("| init | α | " + " | ".join(c[1] for c in COLUMNS) + " |")
    print("|---|---|" + "---|" * len(COLUMNS))
    for init in ("random", "trained"):
        records = runs[("semi_supervised", init)]
        for alpha in ALPHAS:
            cells = [cell([r["test"][f"{alpha:g}"][k] for r in records]) for k, _ in COLUMNS]
            print(f"| {init} | {alpha:g} | " + " | ".join(cells) + " |")
    chance = [1 / n, 5 / n, mrr, 1 / n, 5 / n, mrr, chance_agreement(labels, labels)]
    print("| chance | – | " + " | ".join(f"{c:.3f}" for c in chance) + " |\n")


def trimodal_table(
    runs: dict[tuple[str, str], list[dict[str, Any]]],
    test: StreamSet,
    texts: list[str],
    n: int,
    mrr: float,
) -> None:
    print("trimodal (seed 23): query = frames + prompt; wrong = every attribute named flipped\n")
    print("| init | prompt | " + " | ".join(c[1] for c in PROMPT_COLUMNS) + " |")
    print("|---|---|" + "---|" * len(PROMPT_COLUMNS))
    for init in ("random", "trained"):
        records = runs[("trimodal", init)]
        for condition in records[0]["test"]:
            cells = [cell([r["test"][condition][k] for r in records]) for k, _ in PROMPT_COLUMNS]
            print(f"| {init} | {condition} | " + " | ".join(cells) + " |")
    conditions = prompt_conditions(test, texts)
    fits = {c: float(m.mean()) for c, (_, m) in conditions.items()}
    print(
        f"| chance | – | {1 / n:.3f} | {5 / n:.3f} | {mrr:.3f} | prompt match: "
        + ", ".join(f"{c} {v:.3f}" for c, v in fits.items())
        + " |"
    )


if __name__ == "__main__":
    main()
