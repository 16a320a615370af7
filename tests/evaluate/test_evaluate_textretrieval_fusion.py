"""textretrieval with a collap export's text-conditioned chunk fusion (``--fusion``): the chunks
``embed_audio`` averages, the fused score by hand, the records, and the refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from evaluate_helpers import write_caption_corpus
from safetensors.torch import save_file

from echoic.checkpoint import EchoicModel, ModelConfig, save
from echoic.errors import ConfigError
from echoic.evaluate.textretrieval import (
    caption_set,
    evaluate_text_retrieval,
    fused_similarity,
    ranking_scores,
)
from echoic.evaluate.zeroshot import load_joint
from echoic.objectives.collap import FUSION_FILE, ChunkFusion
from echoic.objectives.joint import Head, JointModel, save_joint
from echoic.text import build_text_encoder

SR = 16000
CHUNK_S = 0.4


def joint_model() -> JointModel:
    torch.manual_seed(0)
    audio = EchoicModel(ModelConfig(encoder="vit_test", frontend="kaldi_fbank"))
    heads = torch.nn.Sequential(Head([32, 16, 8])), torch.nn.Sequential(Head([64, 8]))
    return JointModel(audio, build_text_encoder("text_test"), *heads, chunk_s=CHUNK_S)


def tone(seconds: float, hz: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.4 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_chunk_embeddings_are_the_chunks_embed_audio_averages() -> None:
    joint = joint_model()
    waves = [tone(1.0, 440.0), tone(0.3, 880.0)]
    chunks, valid, glob = joint.embed_audio_chunks(waves)
    assert chunks.shape == (2, 3, 8) and valid.tolist() == [[True] * 3, [True, False, False]]
    assert torch.allclose(glob, joint.embed_audio(waves), atol=1e-6)
    size = -(-SR // 3)  # 1 s in three equal chunks of at most 0.4 s
    alone = joint.embed_audio([waves[0][:size], waves[0][size : 2 * size], waves[0][2 * size :]])
    assert torch.allclose(chunks[0], alone, atol=1e-5)  # a chunk alone is one chunk
    assert torch.allclose(chunks[1, 0], joint.embed_audio(waves[1:])[0], atol=1e-5)
    assert float(chunks[1, 1:].abs().max()) == 0.0


@pytest.fixture
def exported(tmp_path: Path) -> Path:
    """A collap-like export whose fusion attends uniformly (query weights 0)."""
    joint = joint_model()
    directory = save(joint.audio, tmp_path / "collap")
    save_joint(
        directory,
        joint.text,
        joint.audio_head,
        joint.text_head,
        {"objective": "collap", "pool": "mean", "chunk_s": CHUNK_S},
    )
    fusion = ChunkFusion(8, 4)
    with torch.no_grad():
        fusion.query.weight.zero_()
        fusion.query.bias.zero_()
    save_file({k: v.contiguous() for k, v in fusion.state_dict().items()}, directory / FUSION_FILE)
    return directory


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    rows, captions = [], []
    for i, (seconds, hz, text) in enumerate(
        [(1.0, 300.0, "a low hum"), (0.7, 1200.0, "a whistle"), (1.2, 2400.0, "a high beep")]
    ):
        sf.write(root / f"h{i}.wav", tone(seconds, hz), SR)
        rows.append(f"h{i}.wav,tones,{seconds},{SR},,test\n")
        captions.append(f"h{i}.wav,tones,heldout,g{i},{text},en,generated\n")
    return write_caption_corpus(root, rows, captions)


def test_textretrieval_fusion_scores_the_fused_chunks_by_hand(
    exported: Path, corpus: Path, tmp_path: Path
) -> None:
    from echoic.objectives.collap import load_fusion

    _, model = load_joint(str(exported))
    data = caption_set(corpus)
    waves = [sf.read(c.path, dtype="float32")[0] for c in data.clips]
    got = fused_similarity(model, load_fusion(exported), waves, data.texts)
    chunks, valid, glob = model.joint.embed_audio_chunks(waves)
    mean = (chunks * valid[..., None]).sum(1) / valid.sum(1, keepdim=True)  # uniform attention
    fused = torch.nn.functional.normalize(glob + mean, dim=-1)
    text = model.embed_text(data.texts)
    assert np.allclose(got, (text @ fused.t()).numpy(), atol=1e-5)

    out = tmp_path / "out"
    (record,) = evaluate_text_retrieval(
        [str(exported)], [corpus], out, fusion=True, log=lambda _: None
    )
    assert record["model"].endswith("+fusion") and record["config"]["fusion"] is True
    expected = ranking_scores(got, data.relevant)
    assert record["runs"][0]["test"]["t2a_mAP"] == pytest.approx(expected["mAP"])
    (plain,) = evaluate_text_retrieval([str(exported)], [corpus], out, log=lambda _: None)
    assert "fusion" not in plain["config"] and plain["identity"] != record["identity"]
    saved = sorted(p.name for p in out.rglob("*.textretrieval.json"))
    assert len(saved) == 2  # one record each: the fused one does not overwrite the plain one
    seen: list[str] = []
    again = evaluate_text_retrieval([str(exported)], [corpus], out, fusion=True, log=seen.append)
    assert again[0]["identity"] == record["identity"] and "done earlier" in seen[-1]


def test_textretrieval_fusion_refuses_what_has_no_fusion(
    exported: Path, corpus: Path, tmp_path: Path
) -> None:
    (exported / FUSION_FILE).unlink()
    with pytest.raises(ConfigError, match="fusion: true"):
        evaluate_text_retrieval([str(exported)], [corpus], tmp_path / "out", fusion=True)
    with pytest.raises(ConfigError, match="model directories"):
        evaluate_text_retrieval([joint_model()], [corpus], tmp_path / "out", fusion=True)
    meta = json.loads((exported / "joint.json").read_text())
    assert "fusion" not in meta
