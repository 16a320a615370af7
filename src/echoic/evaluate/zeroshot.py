"""The ``zeroshot`` protocol: classify a task's clips by the nearest class prompt, nothing trained.

For a joint audio–text model (:class:`echoic.objectives.joint.JointModel`, exported by ``clap`` /
``slap``): every label of the task's vocabulary becomes a prompt (``prompt``, default ``"the sound
of a {label}"``), the prompts go through the text tower and head, and each clip's joint audio
vector is scored against them by cosine similarity. Multiclass tasks predict the nearest class
(``softmax(logit_scale · cos)`` as probabilities, so top-1 accuracy is the argmax); multilabel
tasks score every label by ``(1 + cos) / 2`` (mAP and d' depend only on the ranking). Event tasks
are refused (no frame-level zero-shot here).

One run per fold plan, on the fold's test split only (the training and validation splits are
unused), scored with the task's own metrics (``task_metadata.json``) — so ESC-50 reports the mean
± std of top-1 accuracy over its five folds like every other protocol.

Label cleanup (:func:`clean_label`), before the label enters the prompt: ``_`` and ``-`` become
spaces, camelCase is split, runs of spaces collapse, the text is lower-cased (acronyms of 2+
capitals are kept), and ``a`` before the label becomes ``an`` when the label starts with a vowel
("the sound of an engine"). ``"crying_baby"`` → ``"the sound of a crying baby"``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from echoic.embed.base import ClipEmbedding
from echoic.errors import ConfigError
from echoic.evaluate.cache import TaskEmbeddings
from echoic.evaluate.data import Scorer, gather
from echoic.evaluate.metrics import report_metrics
from echoic.evaluate.probes import ProbeOutcome
from echoic.evaluate.task import HearTask
from echoic.objectives.joint import JointModel

__all__ = [
    "DEFAULT_PROMPT",
    "JointAudioModel",
    "clean_label",
    "load_joint",
    "prompts_for",
    "run_zeroshot",
    "zeroshot_scores",
]

DEFAULT_PROMPT = "the sound of a {label}"


def clean_label(label: str) -> str:
    """A vocabulary label as words (module docstring): ``"Door_wood-knock"`` → ``"door wood knock"``."""
    text = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", label.strip())
    text = re.sub(r"[_\-]+", " ", text)
    words = [w if re.fullmatch(r"[A-Z0-9]{2,}", w) else w.lower() for w in text.split()]
    return " ".join(words)


def prompts_for(labels: Sequence[str], prompt: str = DEFAULT_PROMPT) -> list[str]:
    """One prompt per label: ``prompt`` with ``{label}`` the cleaned label (``a`` → ``an``
    before a vowel)."""
    if "{label}" not in prompt:
        raise ConfigError(f"a zero-shot prompt must contain {{label}}; found {prompt!r}.")
    out = []
    for label in labels:
        word = clean_label(label)
        text = prompt.replace("{label}", word)
        if word[:1].lower() in "aeiou":
            text = re.sub(r"\ba (?=" + re.escape(word) + ")", "an ", text)
        out.append(text)
    return out


class JointAudioModel:
    """A :class:`JointModel`'s audio side as an embedding model for the task cache: the scene
    embedding of a clip is its joint-space vector (``embed_audio``)."""

    def __init__(self, joint: JointModel) -> None:
        self.joint = joint
        self.label = joint.name
        self.identity = joint.identity
        self.sample_rate = joint.sample_rate
        self.embedding_size = joint.dim
        self.min_samples = joint.audio.frontend.min_samples
        self.channels = joint.audio.frontend.channels

    def scene_embeddings(
        self, waveforms: Sequence[torch.Tensor | np.ndarray], sample_rate: int | None = None
    ) -> torch.Tensor:
        return self.joint.embed_audio(waveforms, sample_rate)

    def embed(
        self, waveforms: Sequence[torch.Tensor | np.ndarray], sample_rate: int | None = None
    ) -> list[ClipEmbedding]:
        scene = self.scene_embeddings(waveforms, sample_rate)
        zero = torch.zeros(1)
        return [ClipEmbedding(s, s[None], zero, s[None], zero) for s in scene]

    def embed_text(self, texts: Sequence[str]) -> torch.Tensor:
        return self.joint.embed_text(texts)


def load_joint(model: Any) -> tuple[str, JointAudioModel]:
    """A model directory, :class:`JointModel` or :class:`JointAudioModel` → (name, adapter)."""
    if isinstance(model, JointAudioModel):
        return model.label, model
    if isinstance(model, JointModel):
        return model.name, JointAudioModel(model)
    if callable(model) and not hasattr(model, "embed"):
        return load_joint(model())
    joint = JointModel.load(str(model))
    return str(model), JointAudioModel(joint)


def zeroshot_scores(
    audio: np.ndarray, text: np.ndarray, multilabel: bool, logit_scale: float
) -> np.ndarray:
    """``(N, C)`` class scores of ``(N, D)`` audio and ``(C, D)`` prompt vectors (module
    docstring): softmax of the scaled cosines, or ``(1 + cos) / 2`` per label."""
    a = audio / np.maximum(np.linalg.norm(audio, axis=1, keepdims=True), 1e-12)
    t = text / np.maximum(np.linalg.norm(text, axis=1, keepdims=True), 1e-12)
    cos = (a @ t.T).astype(np.float64)
    if multilabel:
        return (1.0 + cos) / 2.0
    logits = logit_scale * cos
    logits -= logits.max(1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(1, keepdims=True)


def run_zeroshot(
    task: HearTask, emb: TaskEmbeddings, model: JointAudioModel, prompt: str = DEFAULT_PROMPT
) -> ProbeOutcome:
    """One run per fold plan: the test split's clips classified by the nearest prompt."""
    if task.is_event:
        raise ConfigError(
            f"task {task.name!r} is an event task; the zeroshot protocol classifies whole clips "
            "(scene tasks). Use a probe protocol for it."
        )
    metrics = report_metrics(task.metrics, task.prediction_type, task.is_event)
    prompts = prompts_for(task.vocabulary, prompt)
    text = model.embed_text(prompts).float().cpu().numpy()
    multilabel = task.prediction_type == "multilabel"
    outcome = ProbeOutcome(metrics=list(metrics))
    confusion = None
    for f, plan in enumerate(task.fold_plans()):
        test = gather(task, emb, plan.test)
        scorer = Scorer(task, test, metrics)
        probs = zeroshot_scores(test.x, text, multilabel, model.joint.logit_scale)
        outcome.runs.append(
            {
                "fold": plan.name,
                "fold_index": f,
                "seed": 0,
                "test": scorer.test(probs, None),
                "queries": len(test.files),
            }
        )
        matrix = scorer.confusion(probs)
        if matrix is not None:
            confusion = matrix if confusion is None else confusion + matrix
    outcome.confusion = confusion
    outcome.hparams = {
        "prompt": prompt,
        "label_cleanup": "echoic.evaluate.zeroshot.clean_label",
        "first_prompts": prompts[:3],
        "scores": "multilabel: (1 + cos) / 2; multiclass: softmax(logit_scale * cos)",
        "logit_scale": model.joint.logit_scale,
        "splits": "each fold's test split; nothing trained",
    }
    return outcome
