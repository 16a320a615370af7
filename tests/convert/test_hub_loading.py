"""``hf:ORG/NAME`` models: ``echoic.load`` / ``find_card`` / the CLI fetch the repository with
``huggingface_hub`` (here: offline, from a hub cache the test writes in huggingface_hub's own
layout — ``models--ORG--NAME/{blobs,snapshots/<commit>,refs/main}``) and convert it through the
registry's detection; the result equals converting the saved folder directly."""

from __future__ import annotations

import pytest
import torch
from hub_helpers import write_hub_cache
from spectrogram_reference import make_hf_ast

import echoic
from echoic.cards import find_card
from echoic.checkpoint import EchoicModel, load_dir
from echoic.convert import convert
from echoic.hub import HubError, cached_snapshot, hub_snapshot, parse_hub_name
from echoic.types import AudioBatch


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty hub cache (``HF_HUB_CACHE``), offline, with echoic's cache beside it."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("ECHOIC_CACHE", str(tmp_path / "echoic-cache"))
    return tmp_path / "hub"


def outputs(model: EchoicModel, seconds: float = 1.3) -> list[torch.Tensor]:
    wave = torch.randn(2, int(16000 * seconds), generator=torch.Generator().manual_seed(0)) * 0.1
    batch = AudioBatch(wave, torch.tensor([wave.shape[1], wave.shape[1] * 2 // 3]), 16000)
    with torch.no_grad():
        return list(model(batch).layers)


def assert_same(a: EchoicModel, b: EchoicModel) -> None:
    for x, y in zip(outputs(a), outputs(b), strict=True):
        assert torch.equal(x, y)


@pytest.mark.parametrize("case", ["wav2vec2", "ast"])
def test_load_hf_name_equals_the_direct_conversion(
    case, hf_folder, transformers_module, hub_cache, tmp_path
):
    if case == "ast":
        folder = tmp_path / "saved-ast"
        make_hf_ast(transformers_module, 298).save_pretrained(folder)
    else:
        folder, _ = hf_folder(case)
    write_hub_cache(hub_cache, f"test-org/tiny-{case}", folder)
    model = echoic.load(f"hf:test-org/tiny-{case}")
    assert isinstance(model, EchoicModel) and not model.training
    direct = load_dir(convert(folder, tmp_path / "direct"))
    assert_same(model, direct)
    card = find_card(f"hf:test-org/tiny-{case}")
    assert card.kind == "converted" and card.name == f"hf:test-org/tiny-{case}"
    assert card.origin.sha256 and card.origin.path and "echoic-cache" in card.origin.path
    # converted once: the second load reads the cached directory
    converted = sorted((tmp_path / "echoic-cache" / "converted").iterdir())
    assert len(converted) == 1
    stamp = (converted[0] / "model.safetensors").stat().st_mtime_ns
    assert_same(echoic.load(f"hf:test-org/tiny-{case}@main"), direct)
    assert (converted[0] / "model.safetensors").stat().st_mtime_ns == stamp


def test_cli_verbs_take_hf_names(hf_folder, hub_cache, tmp_path, capsys):
    from echoic.cli.main import main

    folder, _ = hf_folder("hubert")
    write_hub_cache(hub_cache, "test-org/tiny-hubert", folder)
    assert main(["info", "hf:test-org/tiny-hubert"]) == 0
    assert "hf:test-org/tiny-hubert" in capsys.readouterr().out
    out = tmp_path / "converted-by-cli"
    assert main(["convert", "hf:test-org/tiny-hubert", "--out", str(out)]) == 0
    assert_same(load_dir(out), load_dir(convert(folder, tmp_path / "direct")))


def test_offline_and_not_cached_is_one_line_saying_how_to_get_it(hub_cache):
    with pytest.raises(HubError) as caught:
        echoic.load("hf:test-org/not-downloaded")
    message = str(caught.value)
    assert "\n" not in message
    assert "HF_HUB_OFFLINE is set and it is not in the cache" in message
    assert "huggingface-cli download test-org/not-downloaded" in message
    assert str(hub_cache) in message and "HF_HUB_CACHE" in message
    assert cached_snapshot("test-org/not-downloaded") is None


def test_names_and_revisions_are_parsed():
    assert parse_hub_name("hf:facebook/wav2vec2-base") == ("facebook/wav2vec2-base", None)
    assert parse_hub_name("hf:org/name@v1.0") == ("org/name", "v1.0")
    for bad in ("hf:wav2vec2-base", "hf:a/b/c", "hf:/name", "hf:../x"):
        with pytest.raises(HubError, match="hf:ORG/NAME"):
            parse_hub_name(bad)


def test_a_cached_echoic_directory_loads_as_it_is(hub_cache, tiny_model_factory, tmp_path):
    from echoic.checkpoint import save

    saved = save(tiny_model_factory(encoder="wav_test"), tmp_path / "echoic-model")
    snapshot = write_hub_cache(hub_cache, "test-org/echoic-tiny", saved)
    assert hub_snapshot("hf:test-org/echoic-tiny") == snapshot
    model = echoic.load("hf:test-org/echoic-tiny")
    assert_same(model, load_dir(saved))
    assert not (tmp_path / "echoic-cache" / "converted").exists()  # nothing to convert
