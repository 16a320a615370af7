"""`echoic segment` end to end: a tiny model's frames and the energy baseline, odd files
reported and skipped, resume, tokens from a fitted k-means tokenizer, one row per segment."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import torch

from echoic.checkpoint import save
from echoic.cli.main import main
from echoic.data.testing import make_odd_files
from echoic.embed.embedder import Embedder
from echoic.embed.segment_files import FrameSegmenter, read_segments
from echoic.errors import ConfigError
from echoic.tokenizers import build_tokenizer, load_tokenizer

SR = 16000
BURSTS = {"two": 2, "three": 3, "five": 5}


def burst_train(count: int, seed: int) -> np.ndarray:
    """``count`` 150 ms tone bursts (different pitches) between 300 ms pauses."""
    rng = np.random.default_rng(seed)
    pieces = []
    for i in range(count):
        t = np.arange(int(0.15 * SR)) / SR
        pieces += [np.zeros(int(0.3 * SR)), 0.4 * np.sin(2 * np.pi * (150 + 90 * i) * t)]
    pieces.append(np.zeros(int(0.3 * SR)))
    clip = np.concatenate(pieces)
    return (clip + 1e-4 * rng.standard_normal(clip.size)).astype(np.float32)


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_model_factory):
    root = tmp_path_factory.mktemp("segment")
    model = save(tiny_model_factory(), root / "model")
    audio = root / "audio"
    (audio / "good").mkdir(parents=True)
    for i, (name, count) in enumerate(BURSTS.items()):
        sf.write(audio / "good" / f"{name}.wav", burst_train(count, i), SR)
    odd = make_odd_files(audio / "odd")
    broken = {str(p.resolve()) for p, what in odd.items() if not what.startswith("valid")}
    valid = {str(p.resolve()) for p, what in odd.items() if what.startswith("valid")}
    return root, str(model), audio, broken, valid


def errors_of(csv_path: Path) -> dict[str, str]:
    with csv_path.open() as fh:
        return {str(Path(r["path"]).resolve()): r["error"] for r in csv.DictReader(fh)}


def test_similarity_segments_report_bad_files_and_resume(setup, capsys) -> None:
    root, model, audio, broken, valid = setup
    out = root / "sim.parquet"
    args = ["segment", str(audio), "--model", model, "--out", str(out), "--quiet"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    table = pq.read_table(out)
    paths = table.column("path").to_pylist()
    good = {str((audio / "good" / f"{n}.wav").resolve()) for n in BURSTS}
    assert len(paths) == len(set(paths)) and set(paths) == good | valid
    assert set(errors_of(root / "sim.errors.csv")) == broken
    assert f"{len(broken)} file(s) skipped" in printed

    # each segment's embedding is the mean of the model's frames that start inside it (a frame
    # spans half a hop either side of its centre, clipped to the clip)
    embedder = Embedder(model)
    rows = table.to_pylist()
    assert sum(len(r["start_s"]) for r in rows) > 0
    for row in rows:
        starts, ends = np.array(row["start_s"]), np.array(row["end_s"])
        assert (starts < ends).all() and (starts[1:] >= ends[:-1]).all()
        assert starts.min() >= 0 and ends.max() <= row["duration_s"] + 1e-9
        if Path(row["path"]).parent.name != "good":
            continue
        wave, _ = sf.read(row["path"], dtype="float32")
        clip = embedder.embed([wave])[0]
        centres = clip.frame_times_ms.numpy() / 1000
        frame_starts = np.maximum(centres - np.diff(centres).mean() / 2, 0.0)
        for start, end, vector in zip(starts, ends, row["embedding"], strict=True):
            inside = (frame_starts > start - 1e-6) & (frame_starts < end - 1e-6)
            expected = clip.frames[torch.from_numpy(inside)].numpy().mean(0)
            np.testing.assert_allclose(vector, expected, rtol=1e-4, atol=1e-5)

    # a re-run resumes: nothing recomputed; other settings are refused, naming both
    assert main(args) == 0
    assert f"wrote 0 rows to {out} ({len(paths)} already there)" in capsys.readouterr().out
    assert main([*args, "--merge-threshold", "0.5"]) == 1
    assert "merge_threshold=0.5" in capsys.readouterr().err

    flat = read_segments(out)
    assert flat.num_rows == sum(len(r["start_s"]) for r in rows)
    assert set(flat.column_names) >= {"path", "segment", "start_s", "end_s", "embedding"}


def test_energy_baseline_counts_the_bursts(setup, capsys) -> None:
    root, _, audio, broken, _ = setup
    out = root / "energy.parquet"
    assert main(["segment", str(audio / "good"), "--method", "energy", "--out", str(out)]) == 0
    rows = {Path(r["path"]).stem: r for r in pq.read_table(out).to_pylist()}
    assert {name: len(row["nucleus_s"]) for name, row in rows.items()} == BURSTS
    for row in rows.values():
        assert len(row["start_s"]) == len(row["end_s"]) == len(row["nucleus_s"])
    assert "10 segments" in capsys.readouterr().out
    # odd files: reported and skipped by the energy method too (it reads audio like a model)
    odd_out = root / "energy_odd.parquet"
    assert main(["segment", str(audio / "odd"), "--method", "energy", "--out", str(odd_out)]) == 0
    assert set(errors_of(root / "energy_odd.errors.csv")) == broken


def test_tokens_from_a_fitted_kmeans(setup, capsys) -> None:
    root, model, audio, _, _ = setup
    tok = root / "km"
    fit = ["tokenizer", "fit", "--tokenizer", "kmeans", "--model", model, "--layer", "1"]
    assert main([*fit, str(audio / "good"), "--set", "n_clusters=3", "--out", str(tok)]) == 0
    out = root / "tokens.parquet"
    # the tokenizer's model and layer are used by default
    assert main(["segment", str(audio / "good"), "--tokens", str(tok), "--out", str(out)]) == 0
    capsys.readouterr()
    tokenizer = load_tokenizer(tok).eval()
    for row in pq.read_table(out).to_pylist():
        vectors = torch.tensor(row["embedding"], dtype=torch.float32)
        assert len(row["token"]) == len(row["start_s"]) > 0
        expected = tokenizer(vectors[None], None)[0, :, 0].tolist()
        assert row["token"] == expected and set(expected) <= {0, 1, 2}
    # a tokenizer of another width, or with several codebooks, is refused with what to do
    embedder = Embedder(model)
    with pytest.raises(ConfigError, match="use the model"):
        FrameSegmenter(embedder, tokenizer=build_tokenizer("kmeans", 5, {"n_clusters": 2}))
    rvq = build_tokenizer("rvq", embedder.embedding_size, {"n_codebooks": 2, "codebook_size": 2})
    with pytest.raises(ConfigError, match="single-codebook"):
        FrameSegmenter(embedder, tokenizer=rvq)
