"""``echoic tokenize``'s engine: frames from a model, token rows in Parquet, resume, bad files,
dedup and rates — on a tiny untrained model (both encoder families) and a fitted k-means."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import torch

from echoic.embed.embedder import Embedder
from echoic.embed.token_frames import FrameSource, gather_frames
from echoic.embed.tokenize import dedup_runs, tokenize_files
from echoic.errors import EchoicError
from echoic.tokenizers import build_tokenizer


@pytest.fixture
def audio_dir(tmp_path, make_tone):
    folder = tmp_path / "audio"
    folder.mkdir()
    for i, seconds in enumerate((0.7, 1.3, 2.1)):
        sf.write(folder / f"clip{i}.wav", make_tone(seconds, freq=200.0 + 150 * i, seed=i), 16000)
    (folder / "broken.wav").write_bytes(b"not audio at all")
    return folder


def test_layer_frames_are_the_embedders_frames(tiny_model, make_tone) -> None:
    clips = [make_tone(1.1, seed=1), make_tone(0.4, seed=2)]
    source = FrameSource(tiny_model, layer=1)
    frames = source.frames(clips)
    expected = Embedder(tiny_model, layer=1).embed(clips)
    for got, want in zip(frames, expected, strict=True):
        torch.testing.assert_close(got.inputs, want.frames)
        assert got.first_ms == pytest.approx(float(want.frame_times_ms[0]))
        assert got.hop_ms == pytest.approx(float(want.frame_times_ms[1] - want.frame_times_ms[0]))


def test_acoustic_frames_line_up_with_the_layer(tiny_model_factory, make_tone) -> None:
    model = tiny_model_factory(encoder="vit_test")
    clips = [make_tone(1.1, seed=1), make_tone(0.45, seed=2)]
    layer = FrameSource(model).frames(clips)
    for kind, width in (("features", None), ("mfcc", 39)):
        source = FrameSource(model, input=kind, with_targets=True)
        for got, want in zip(source.frames(clips), layer, strict=True):
            assert got.targets is not None and got.inputs.shape[0] == want.inputs.shape[0]
            torch.testing.assert_close(got.targets, want.inputs)
            if width:
                assert got.inputs.shape[1] == width
    spec = model.encoder.spec
    assert source.dims()[0] == 39 and FrameSource(model, input="features").dims()[0] == (
        spec.receptive * spec.n_bins
    )


def fitted_kmeans(source: FrameSource, audio_dir) -> object:
    data = gather_frames([str(audio_dir)], source)
    assert [p for p, _ in data.skipped] == [str(audio_dir / "broken.wav")]
    tokenizer = build_tokenizer("kmeans", data.inputs[0].shape[1], {"n_clusters": 4})
    tokenizer.fit(data.inputs)
    return tokenizer


def test_tokenize_files_rows_resume_and_bad_files(tiny_model, audio_dir, tmp_path) -> None:
    source = FrameSource(tiny_model)
    tokenizer = fitted_kmeans(source, audio_dir)
    out = tmp_path / "tokens.parquet"
    report = tokenize_files([audio_dir], out, source, tokenizer, progress=False)
    assert report.extract.written == 3 and [p for p, _ in report.extract.errors] == [
        str(audio_dir / "broken.wav")
    ]
    table = pq.read_table(out).to_pylist()
    assert sorted(r["path"] for r in table) == sorted(
        str((audio_dir / f"clip{i}.wav").resolve()) for i in range(3)
    )
    for row in table:  # each file's ids: its frames alone through the tokenizer
        wave, _ = sf.read(row["path"], dtype="float32")
        frames = source.frames([wave])[0]
        expected = tokenizer(frames.inputs[None])[0].numpy()
        assert np.array_equal(np.array(row["ids"]), expected)
        assert row["n_frames"] == len(row["ids"]) and row["frame_hop_ms"] == source.hop_ms
        assert row["tokenizer"] == tokenizer.identity
        assert row["first_frame_ms"] == pytest.approx(frames.first_ms)
    rates = {p: (t, b) for p, _, _, t, b in report.rates}
    for row in table:  # no dedup: one id per frame per codebook
        assert rates[row["path"]][0] == pytest.approx(row["n_frames"] / row["duration_s"])
        assert rates[row["path"]][1] == pytest.approx(2.0 * row["n_frames"] / row["duration_s"])
    again = tokenize_files([audio_dir], out, source, tokenizer, progress=False)
    assert again.extract.written == 0 and again.extract.already_done == 3
    assert pq.read_table(out).num_rows == 3
    with pytest.raises(EchoicError, match="another model or settings"):
        tokenize_files([audio_dir], out, source, tokenizer, dedup=True, progress=False)


def test_dedup_keeps_run_lengths(tiny_model_factory, audio_dir, tmp_path) -> None:
    source = FrameSource(tiny_model_factory())
    tokenizer = fitted_kmeans(source, audio_dir)
    plain = tmp_path / "plain.parquet"
    deduped = tmp_path / "dedup.parquet"
    tokenize_files([audio_dir], plain, source, tokenizer, progress=False)
    report = tokenize_files([audio_dir], deduped, source, tokenizer, dedup=True, progress=False)
    full = {r["path"]: np.array(r["ids"]) for r in pq.read_table(plain).to_pylist()}
    for row in pq.read_table(deduped).to_pylist():
        ids, runs = np.array(row["ids"]), np.array(row["run_lengths"])
        assert runs.sum() == row["n_frames"] and len(runs) == len(ids)
        assert np.array_equal(np.repeat(ids, runs, axis=0), full[row["path"]])
        assert all((ids[1:] != ids[:-1]).any(1))  # no two neighbours alike
    assert report.overall()[1] <= sum(len(v) for v in full.values()) / report.overall()[0]


def test_dedup_runs_by_hand() -> None:
    ids = np.array([[1, 1, 2, 2, 2, 1], [5, 5, 5, 6, 6, 5]])  # (codebooks, T)
    kept, runs = dedup_runs(ids)
    assert kept.tolist() == [[1, 2, 2, 1], [5, 5, 6, 5]] and runs.tolist() == [2, 1, 2, 1]
