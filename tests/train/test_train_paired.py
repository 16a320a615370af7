"""Paired audio–caption batches (data.captions): listing, seeded caption draws that survive a
resume, tokens from the workers, and a clap / slap run exported as a joint model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from echoic.errors import ConfigError
from echoic.objectives.joint import JointModel, pool_tokens
from echoic.text import build_text_encoder
from echoic.train.config import DataConfig, load_config
from echoic.train.data import build_dataloader
from echoic.train.paired import PairCollate, PairedCropDataset, list_paired_clips
from echoic.train.run import pretrain
from echoic.types import AudioBatch

SR = 16000
HEADER = "file,source,split,group,caption,caption_lang,caption_kind\n"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five training clips (two captions each, one repeated in en-GB, one in French) and one
    held-out clip, as ``echoic corpus build`` lays them out."""
    root = tmp_path_factory.mktemp("captioned")
    rng = np.random.default_rng(0)
    rows, captions = [], []
    for i in range(6):
        n = int(SR * (0.6 + 0.2 * i))
        x = 0.3 * np.sin(2 * np.pi * (200 + 150 * i) * np.arange(n) / SR)
        sf.write(root / f"c{i}.wav", (x + 0.02 * rng.standard_normal(n)).astype(np.float32), SR)
        split = "heldout" if i == 5 else "train"
        rows.append((split, f"c{i}.wav,tones,{n / SR},{SR},,test\n"))
        captions += [
            f"c{i}.wav,tones,{split},g{i},a tone of {200 + 150 * i} hertz,en,generated\n",
            f"c{i}.wav,tones,{split},g{i},a tone of {200 + 150 * i} hertz,en-GB,generated\n",
            f"c{i}.wav,tones,{split},g{i},tone {i},en,template\n",
            f"c{i}.wav,tones,{split},g{i},un son {i},fr,human\n",
        ]
    head = "file,source,duration_s,sample_rate,sha256,origin\n"
    (root / "manifest.csv").write_text(head + "".join(r for s, r in rows if s == "train"))
    (root / "heldout.csv").write_text(head + "".join(r for s, r in rows if s == "heldout"))
    (root / "captions.csv").write_text(HEADER + "".join(captions))
    return root


def test_corpus_pairs_keep_train_clips_distinct_texts_and_the_asked_languages(corpus: Path) -> None:
    clips, captions = list_paired_clips(DataConfig(train=(str(corpus),), captions=True))
    assert [Path(c.path).name for c in clips] == [f"c{i}.wav" for i in range(5)]  # no held-out
    assert captions[0] == ("a tone of 200 hertz", "tone 0", "un son 0")  # en-GB duplicate once
    en = DataConfig(train=(str(corpus),), captions=True, caption_langs=("en",))
    assert list_paired_clips(en)[1][1] == ("a tone of 350 hertz", "tone 1")
    generated = DataConfig(train=(str(corpus),), captions=True, caption_kinds=("generated",))
    assert list_paired_clips(generated)[1][2] == ("a tone of 500 hertz",)
    with pytest.raises(ConfigError, match="widen the filters"):
        list_paired_clips(DataConfig(train=(str(corpus),), captions=True, caption_langs=("de",)))


def test_template_captions_come_from_the_manifest_columns(tmp_path: Path, corpus: Path) -> None:
    table = tmp_path / "meta.csv"
    table.write_text(
        f"file,category,lang\n{corpus}/c0.wav,alphabet,fr\n{corpus}/c1.wav,colors,de\n"
    )
    config = DataConfig(train=(str(table),), captions=True, caption_template="{category} in {lang}")
    clips, captions = list_paired_clips(config)
    assert captions == [("alphabet in fr",), ("colors in de",)] and len(clips) == 2
    bad = DataConfig(train=(str(table),), captions=True, caption_template="{speaker}")
    with pytest.raises(ConfigError, match="speaker"):
        list_paired_clips(bad)


def dataset(corpus: Path) -> PairedCropDataset:
    clips, captions = list_paired_clips(DataConfig(train=(str(corpus),), captions=True))
    return PairedCropDataset(clips, captions, sample_rate=SR, crop_s=0.3, seed=4)


def test_caption_draws_are_seeded_per_item_and_vary(corpus: Path) -> None:
    a, b = dataset(corpus), dataset(corpus)
    draws = [a[n]["caption"] for n in range(40)]
    assert draws == [b[n]["caption"] for n in range(40)]  # a pure function of (seed, number)
    assert len(set(draws)) > 8  # many captions over 8 epochs of 5 clips
    for n in range(40):
        item = a[n]
        assert item["caption"] in a.captions[item["clip"]]  # always the read clip's own


def test_a_resumed_loader_gives_the_same_paired_batches_in_any_worker_count(corpus: Path) -> None:
    tower = build_text_encoder("text_test")
    collate = PairCollate(tower.tokenize)
    straight = iter(build_dataloader(dataset(corpus), batch_size=2, collate_fn=collate))
    batches = [next(straight) for _ in range(4)]
    for workers in (0, 1):  # resumed after 2 batches of 2 clips: the stream starts at clip 4
        loader = build_dataloader(
            dataset(corpus), batch_size=2, start=4, num_workers=workers, collate_fn=collate
        )
        resumed = iter(loader)
        for expected in batches[2:]:
            got = next(resumed)
            assert got["captions"] == expected["captions"]
            assert torch.equal(got["text_ids"], expected["text_ids"])
            assert torch.equal(got["text_padding"], expected["text_padding"])
            assert torch.equal(got["waveform"], expected["waveform"])
    first = batches[0]
    assert first["text_ids"].shape[0] == 2 and torch.equal(
        first["text_ids"], tower.tokenize(first["captions"]).input_ids
    )


def run_config(out: Path, corpus: Path, objective: str, **extra: object) -> list[str]:
    config = {"text": "text_test", "dim": 16, "hidden": 32, **extra}
    return [
        f"--output_dir={out}",
        "--model.encoder=vit_test",
        f"--objective.name={objective}",
        f"--objective.config={json.dumps(config)}",
        f"--data.train=[{corpus}]",
        "--data.captions=true",
        "--data.crop_s=0.5",
        "--data.batch_size=3",
        "--data.num_workers=0",
        "--trainer.max_steps=3",
        "--trainer.progress_bar=false",
        "--trainer.tensorboard=false",
    ]


def test_captions_and_objective_must_agree(tmp_path: Path, corpus: Path) -> None:
    no_captions = [a for a in run_config(tmp_path / "a", corpus, "clap") if "captions" not in a]
    with pytest.raises(ConfigError, match=r"data\.captions: true"):
        pretrain(load_config(None, no_captions), export=False)
    mae = run_config(tmp_path / "b", corpus, "mae")
    mae[3] = "--objective.config={}"
    with pytest.raises(ConfigError, match="reads no captions"):
        pretrain(load_config(None, mae), export=False)


def test_slap_run_logs_collapse_checks_and_exports_a_joint_model(
    tmp_path: Path, corpus: Path
) -> None:
    torch.set_num_threads(1)
    out = tmp_path / "slap"
    result = pretrain(load_config(None, run_config(out, corpus, "slap", collapse_every=2)))
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [("audio_rank" in r, "text_std" in r) for r in rows] == [
        (True, True),
        (False, False),
        (True, True),
    ]
    assert result.export_dir is not None
    joint = JointModel.load(result.export_dir)
    # the evaluation cache key hashes every weight, 0-d buffers included (slap's heads hold some)
    assert joint.identity.startswith("joint-")
    waves = [sf.read(corpus / f"c{i}.wav", dtype="float32")[0] for i in (0, 3)]
    vectors = joint.embed_audio(waves)
    assert vectors.shape == (2, 16)
    assert torch.allclose(vectors.norm(dim=1), torch.ones(2), atol=1e-5)
    alone = joint.embed_audio(waves[:1])
    assert torch.allclose(alone[0], vectors[0], atol=1e-5)  # padding never changes a clip
    # the same computation through the trained objective's modules (audio: projector →
    # predictor, the "cross" space; text: the projector)
    objective = result.module.objective.eval()
    with torch.no_grad():
        batch = torch.from_numpy(waves[0])[None]
        feats = result.module.frontend(AudioBatch(batch, torch.tensor([batch.shape[1]]), SR))
        pooled = pool_tokens(objective.encoder(feats), "mean")
        expected = objective.audio_predictor(objective.audio_projector(pooled))
        text = objective.text_projector(objective.text_tower.embed(["a tone of 200 hertz"]))
    assert torch.allclose(torch.nn.functional.normalize(expected, dim=-1)[0], alone[0], atol=1e-5)
    embedded = joint.embed_text(["a tone of 200 hertz"])
    assert torch.allclose(torch.nn.functional.normalize(text, dim=-1), embedded, atol=1e-5)
