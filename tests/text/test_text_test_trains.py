"""``text_test`` learns: a toy contrastive pairing of captions with their paraphrases (the same
tower on both sides, symmetric InfoNCE) drives the loss down and pairs every caption with its own
paraphrase; under LoRA the same happens with the base weights untouched."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from echoic.text import build_text_encoder

PAIRS = [
    ("a dog barking", "barking of a dog"),
    ("rain on a tin roof", "tin roof in the rain"),
    ("a violin playing C4", "violin note C4"),
    ("footsteps on gravel", "gravel footsteps"),
    ("a car horn honking", "honking horn of a car"),
    ("birds singing at dawn", "dawn birdsong"),
    ("a door slamming shut", "slam of a door"),
    ("church bells ringing", "ringing bells of a church"),
]


def _infonce(tower: torch.nn.Module, temperature: float = 0.1) -> tuple[torch.Tensor, float]:
    left = tower.embed([a for a, _ in PAIRS])
    right = tower.embed([b for _, b in PAIRS])
    logits = left @ right.T / temperature
    target = torch.arange(len(PAIRS))
    loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
    accuracy = (logits.argmax(dim=1) == target).float().mean().item()
    return loss, accuracy


def _train(tower: torch.nn.Module, steps: int, lr: float) -> tuple[list[float], float]:
    params = [p for p in tower.parameters() if p.requires_grad]
    optimiser = torch.optim.Adam(params, lr=lr)
    tower.train()
    losses = []
    for _ in range(steps):
        loss, _ = _infonce(tower)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    tower.eval()
    with torch.no_grad():
        final, accuracy = _infonce(tower)
    losses.append(final.item())
    return losses, accuracy


def test_text_test_learns_a_contrastive_pairing() -> None:
    torch.manual_seed(0)
    tower = build_text_encoder("text_test", width=32, depth=2, heads=2)
    losses, accuracy = _train(tower, steps=40, lr=3e-3)
    assert losses[-1] < 0.3 * losses[0], losses
    assert accuracy == 1.0


def test_text_test_learns_under_lora_with_the_base_untouched() -> None:
    torch.manual_seed(0)
    tower = build_text_encoder(
        "text_test",
        width=32,
        depth=2,
        heads=2,
        train="lora",
        lora_rank=4,
        lora_targets=["query", "output"],
    )
    before = {k: v.clone() for k, v in tower.state_dict().items() if "lora_" not in k}
    losses, accuracy = _train(tower, steps=40, lr=1e-2)
    assert losses[-1] < 0.3 * losses[0], losses
    assert accuracy == 1.0
    after = tower.state_dict()
    for key, value in before.items():
        torch.testing.assert_close(after[key], value, rtol=0, atol=0, msg=key)
