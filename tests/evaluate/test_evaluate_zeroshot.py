"""Zero-shot classification and text↔audio retrieval of joint audio–text models: prompts and
label cleanup, a toy joint model whose audio and text vectors are built to match (and a control
whose text side is permuted), ranking metrics against brute force, both in one report."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch
from evaluate_helpers import FREQS, SR, write_caption_corpus

from echoic.errors import ConfigError
from echoic.evaluate import EvalConfig, ProbeConfig, evaluate
from echoic.evaluate.runner import write_summary
from echoic.evaluate.textretrieval import caption_set, evaluate_text_retrieval, ranking_scores
from echoic.evaluate.zeroshot import JointAudioModel, clean_label, prompts_for

LABELS = ("high", "low", "mid")  # the toy task's vocabulary (sorted)


class ToneJoint(JointAudioModel):
    """A joint model built to be right: a clip's vector is the one-hot of the tone band holding
    most of its energy; a text's is the one-hot of the band word it names (``order`` permutes
    the text side: the control that must fail)."""

    def __init__(self, order: Sequence[int] = (0, 1, 2), name: str = "tones-joint") -> None:
        self.label, self.identity = name, f"{name}-{list(order)}"
        self.sample_rate, self.embedding_size, self.min_samples, self.channels = SR, 3, 400, 1
        self.order = list(order)
        self.joint = SimpleNamespace(logit_scale=10.0)

    def scene_embeddings(self, waveforms, sample_rate=None):  # type: ignore[no-untyped-def]
        out = torch.zeros(len(waveforms), 3)
        for i, w in enumerate(waveforms):
            spectrum = np.abs(np.fft.rfft(np.asarray(w)))
            freqs = np.fft.rfftfreq(len(w), 1 / SR)
            peak = freqs[int(np.argmax(spectrum))]
            band = min(LABELS, key=lambda lab: abs(FREQS[lab] - peak))
            out[i, LABELS.index(band)] = 1.0
        return out

    def embed_text(self, texts):  # type: ignore[no-untyped-def]
        out = torch.zeros(len(texts), 3)
        for i, text in enumerate(texts):
            word = next(lab for lab in LABELS if lab in text.split())
            out[i, self.order[LABELS.index(word)]] = 1.0
        return out


def test_labels_become_words_in_the_prompt() -> None:
    assert clean_label("crying_baby") == "crying baby"
    assert clean_label("Door_wood-knock") == "door wood knock"
    assert clean_label("vacuumCleaner") == "vacuum cleaner"
    assert clean_label("TV_news") == "TV news"
    assert prompts_for(["dog", "airplane", "Engine"]) == [
        "the sound of a dog",
        "the sound of an airplane",
        "the sound of an engine",
    ]
    assert prompts_for(["cat"], "{label} noises") == ["cat noises"]
    with pytest.raises(ConfigError, match="label"):
        prompts_for(["cat"], "a sound")


def test_zeroshot_finds_the_known_answer_and_a_permuted_text_side_does_not(
    scene_task: Path, tmp_path: Path
) -> None:
    config = EvalConfig(out=tmp_path / "out", probe=ProbeConfig(protocol="zeroshot"), report=False)
    right, wrong = evaluate(
        [ToneJoint(), ToneJoint((1, 2, 0), "shuffled")], [scene_task], config, log=lambda _: None
    )
    assert right["primary_metric"] == "top1_acc" and len(right["runs"]) == 3  # one per fold
    assert [r["test"]["top1_acc"] for r in right["runs"]] == [1.0, 1.0, 1.0]
    assert right["scores"]["mAP"]["mean"] == pytest.approx(1.0)
    assert right["hparams"]["first_prompts"] == [
        "the sound of a high",
        "the sound of a low",
        "the sound of a mid",
    ]
    assert wrong["scores"]["top1_acc"]["mean"] == 0.0  # every clip sent to another class
    confusion = np.array(right["confusion"]["matrix"])
    assert (confusion == np.diag(np.diag(confusion))).all() and confusion.sum() == 36


def test_zeroshot_refuses_event_tasks(event_task: Path, tmp_path: Path) -> None:
    config = EvalConfig(out=tmp_path / "out", probe=ProbeConfig(protocol="zeroshot"), report=False)
    with pytest.raises(ConfigError, match="event task"):
        evaluate([ToneJoint()], [event_task], config, log=lambda _: None)


def brute_force(similarity: np.ndarray, relevant: np.ndarray) -> dict[str, float]:
    """R@k and mAP by counting, one relevant item at a time."""
    recalls: dict[int, list[float]] = {1: [], 5: [], 10: []}
    aps = []
    for sim, rel in zip(similarity, relevant, strict=True):
        items = np.flatnonzero(rel)
        if not len(items):
            continue
        ranks = sorted(
            1 + sum(1 for k in range(len(sim)) if sim[k] > sim[j] or (sim[k] == sim[j] and k < j))
            for j in items
        )
        for k in recalls:
            recalls[k].append(float(ranks[0] <= k))
        aps.append(sum((n + 1) / r for n, r in enumerate(ranks)) / len(ranks))
    return {**{f"R@{k}": float(np.mean(v)) for k, v in recalls.items()}, "mAP": float(np.mean(aps))}


def test_ranking_scores_equal_brute_force_with_ties_and_several_relevant() -> None:
    rng = np.random.default_rng(3)
    similarity = rng.integers(0, 6, size=(40, 30)).astype(float)  # many ties
    relevant = rng.random((40, 30)) < 0.08
    relevant[0] = False  # a query without a relevant item is left out
    got = ranking_scores(similarity, relevant)
    want = brute_force(similarity, relevant)
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-12), key


@pytest.fixture
def heldout_corpus(tmp_path: Path) -> Path:
    """Held-out clips: one tone per band; English captions naming the band (one caption shared
    by two clips), French ones to filter out."""
    root = tmp_path / "corpus"
    root.mkdir()
    t = np.arange(SR) / SR
    rows, captions = [], []
    clips = [("low", 0), ("mid", 1), ("high", 2), ("low", 3)]
    for band, i in clips:
        sf.write(
            root / f"h{i}.wav", (0.5 * np.sin(2 * np.pi * FREQS[band] * t)).astype(np.float32), SR
        )
        rows.append(f"h{i}.wav,tones,1.0,{SR},,test\n")
        captions.append(f"h{i}.wav,tones,heldout,g{i},a {band} tone,en,generated\n")
        captions.append(f"h{i}.wav,tones,heldout,g{i},un son {band},fr,human\n")
    return write_caption_corpus(root, rows, captions)


def test_caption_sets_join_identical_texts_and_filter_languages(heldout_corpus: Path) -> None:
    data = caption_set(heldout_corpus, ["en"])
    assert data.texts == ["a low tone", "a mid tone", "a high tone"]
    assert data.relevant.tolist() == [
        [True, False, False, True],
        [False, True, False, False],
        [False, False, True, False],
    ]
    assert len(caption_set(heldout_corpus).texts) == 6  # both languages


def test_text_retrieval_and_zeroshot_records_share_one_report(
    heldout_corpus: Path, scene_task: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    config = EvalConfig(out=out, probe=ProbeConfig(protocol="zeroshot"), report=False)
    evaluate([ToneJoint()], [scene_task], config, log=lambda _: None)
    (record,) = evaluate_text_retrieval(
        [ToneJoint()], [heldout_corpus], out, ["en"], log=lambda _: None
    )
    test = record["runs"][0]["test"]
    assert test["t2a_R@1"] == 1.0 and test["a2t_R@1"] == 1.0
    # "a low tone" has two relevant clips, both ranked first: AP 1; every other query AP 1
    assert test["t2a_mAP"] == 1.0 and test["a2t_mAP"] == 1.0
    shuffled = evaluate_text_retrieval(
        [ToneJoint((2, 0, 1), "shuffled")], [heldout_corpus], out, ["en"], log=lambda _: None
    )[0]["runs"][0]["test"]
    assert shuffled["t2a_R@1"] == 0.0
    write_summary(out, report=True, log=lambda _: None)
    with open(out / "results.csv", newline="") as fh:
        protocols = {row["protocol"] for row in csv.DictReader(fh)}
    assert protocols == {"zeroshot", "textretrieval"}
    html = (out / "report.html").read_text()
    assert "corpus-heldout" in html and "tones" in html and "t2a_R@10" in html
    saved = json.loads((out / "tones-joint" / "corpus-heldout.textretrieval.json").read_text())
    assert saved["primary_metric"] == "t2a_R@10" and saved["hparams"]["captions"] == 3


def test_a_real_joint_model_runs_the_protocol_end_to_end(scene_task: Path, tmp_path: Path) -> None:
    """Random weights: only that the real JointModel path (audio chunks → pool → head, prompts →
    tower → head) runs and scores every fold."""
    from echoic.checkpoint import EchoicModel, ModelConfig
    from echoic.objectives.joint import Head, JointModel
    from echoic.text import build_text_encoder

    torch.manual_seed(0)
    audio = EchoicModel(ModelConfig(encoder="vit_test", frontend="kaldi_fbank"))
    text = build_text_encoder("text_test")
    joint = JointModel(
        audio,
        text,
        torch.nn.Sequential(Head([32, 8])),
        torch.nn.Sequential(Head([64, 8])),
        chunk_s=0.4,
    )
    config = EvalConfig(out=tmp_path / "out", probe=ProbeConfig(protocol="zeroshot"), report=False)
    (record,) = evaluate([joint], [scene_task], config, log=lambda _: None)
    accuracies = [r["test"]["top1_acc"] for r in record["runs"]]
    assert len(accuracies) == 3 and all(0.0 <= a <= 1.0 for a in accuracies)
    assert record["embedding"]["dim"] == 8
