"""Model cards of well-known public checkpoints that echoic converts (kind ``converted``).

Each card says what the model is — architecture, sample rate, embedding size (the sizes of the
echoic encoder family it converts to, declared without building it), licence (non-commercial ones
say so), origin (hub id or release URL) — and how to get its weights, so that ``echoic models``
lists every one of them without building or downloading anything. A card is ``available`` only once
its weights are on this machine:

- hub repositories (``hub_id``): in the Hugging Face cache (:func:`echoic.hub.cached_snapshot`,
  no network). Get them with ``echoic.load("hf:ORG/NAME")`` online (or ``huggingface-cli
  download ORG/NAME``); after that the card's short name loads the same model offline;
- released files: at ``<echoic cache>/weights/<file>`` (:func:`echoic.hub.weights_dir`), where
  the card's install hint says to put the download; or convert the file anywhere with
  ``echoic convert FORMAT FILE --out DIR``.

Building a card converts its weights once (the converted-model cache of ``echoic.load``, reached
through :func:`echoic.cards.converted_dir`) and loads the result; without the weights it raises
:class:`~echoic.cards.ModelUnavailable`, one line naming how to get them. ``sha256``: hub files are
checked by ``huggingface_hub`` against the hub's own hashes; none of the released files below has
a published digest (``extra["sha256"]`` is None) — the converted model records the file's.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from echoic.cards import (
    ModelCard,
    ModelUnavailable,
    Origin,
    converted_dir,
    directory_card,
)
from echoic.errors import CheckpointError
from echoic.hub import HUB_PREFIX, cached_snapshot, hub_cache_dir, weights_dir

if TYPE_CHECKING:
    from echoic.checkpoint import EchoicModel

__all__ = ["PUBLIC", "PublicCard", "public_card"]

NON_COMMERCIAL = "NON-COMMERCIAL"


@dataclass
class PublicCard(ModelCard):
    """A :class:`~echoic.cards.ModelCard` whose weights are downloaded, not installed.

    ``weights_file``: the release's file, relative to :func:`echoic.hub.weights_dir` (None for a
    hub repository, ``origin.hub_id``). ``converter``: the ``echoic convert`` FORMAT that reads it.
    """

    weights_file: str | None = None
    converter: str = ""

    def weights(self) -> Path | None:
        """The local weights (a hub snapshot folder or the release file), or None; no network."""
        if self.origin.hub_id:
            return cached_snapshot(self.origin.hub_id)
        if self.weights_file:
            path = weights_dir() / self.weights_file
            return path if path.is_file() else None
        return None

    def missing(self) -> list[str]:
        return [] if self.weights() is not None else [self.origin.hub_id or str(self.weights_file)]

    def unavailable_reason(self) -> str | None:
        if self.weights() is not None:
            return None
        where = (
            f"{self.origin.hub_id} is not in the Hugging Face cache {hub_cache_dir()}"
            if self.origin.hub_id
            else f"no weights at {weights_dir() / str(self.weights_file)}"
        )
        return f"model {self.name!r}: {where}; get them: {self.install}"


def build_public(card: PublicCard) -> EchoicModel:
    """The converted model of ``card``'s local weights (converted once, then cached)."""
    source = card.weights()
    if source is None:
        raise ModelUnavailable(card.unavailable_reason() or card.name)
    converted = converted_dir(source)
    if converted is None:
        raise CheckpointError(
            f"model {card.name!r}: {source} is not a {card.converter} checkpoint any converter "
            f"reads; re-download it ({card.origin.source})."
        )
    model: EchoicModel = directory_card(converted, name=card.name).build()
    return model


def public_card(
    name: str,
    encoder: str,
    frontend: str,
    converter: str,
    licence: str,
    source: str,
    notes: str,
    dims: tuple[int, int, int],
    hub_id: str | None = None,
    weights_file: str | None = None,
    sample_rate: int = 16000,
    concat: bool = False,
    sizes: dict[str, Any] | None = None,
) -> PublicCard:
    """A card for a public checkpoint of the echoic encoder family ``encoder`` (``sizes``: the
    encoder_config fields that differ from its registered base size).

    ``dims``: ``(width, depth, frequency tokens)`` of that encoder, declared so that listing cards
    needs no encoder registry (tests/convert/test_public_cards.py checks them against it). The
    embedding size is ``width``, or ``width × frequency tokens`` with ``concat``.
    """
    sizes = sizes or {}
    width, depth, freq_tokens = dims
    size = width * (freq_tokens if concat else 1)
    if hub_id:
        install = (
            f"echoic.load('{HUB_PREFIX}{hub_id}') online, or `huggingface-cli download {hub_id}`"
        )
    else:
        install = (
            f"download {weights_file} ({source}) into the echoic weights folder "
            f"($ECHOIC_CACHE/weights, default ~/.cache/echoic/weights), or convert it anywhere: "
            f"echoic convert {converter} FILE --out DIR"
        )
    card = PublicCard(
        name=name,
        kind="converted",
        licence=licence,
        build=lambda: None,  # replaced below: the card itself is needed
        sample_rate=sample_rate,
        embedding_size=size,
        architecture=f"{encoder} on {frontend} (echoic convert {converter})",
        layer_sizes=(size,) * (depth + 1),
        origin=Origin(source=source, hub_id=hub_id),
        install=install,
        notes=notes,
        extra={"encoder": encoder, "format": converter, "sha256": None, **sizes},
        weights_file=weights_file,
        converter=converter,
    )
    card.build = functools.partial(build_public, card)
    return card


HF = "https://huggingface.co/"
NTT = f"NTT software licence for evaluation ({NON_COMMERCIAL}: testing and evaluation only)"
PUBLIC: tuple[PublicCard, ...] = (
    public_card(
        "wav2vec2-base",
        "wav2vec2",
        "waveform",
        "hf-wav2vec2",
        "apache-2.0",
        f"{HF}facebook/wav2vec2-base",
        "wav2vec 2.0 base, LibriSpeech 960 h, self-supervised",
        hub_id="facebook/wav2vec2-base",
        dims=(768, 12, 1),
    ),
    public_card(
        "hubert-base-ls960",
        "hubert",
        "waveform",
        "hf-wav2vec2",
        "apache-2.0",
        f"{HF}facebook/hubert-base-ls960",
        "HuBERT base, LibriSpeech 960 h",
        hub_id="facebook/hubert-base-ls960",
        dims=(768, 12, 1),
    ),
    public_card(
        "wavlm-base-plus",
        "wavlm",
        "waveform",
        "hf-wav2vec2",
        "MIT (microsoft/unilm's WavLM release; the hub card names no licence)",
        f"{HF}microsoft/wavlm-base-plus",
        "WavLM base+, 94k h (Libri-Light, GigaSpeech, VoxPopuli)",
        hub_id="microsoft/wavlm-base-plus",
        dims=(768, 12, 1),
    ),
    public_card(
        "data2vec-audio-base",
        "data2vec_audio",
        "waveform",
        "hf-wav2vec2",
        "apache-2.0",
        f"{HF}facebook/data2vec-audio-base",
        "data2vec 1.0 audio base, LibriSpeech 960 h",
        hub_id="facebook/data2vec-audio-base",
        dims=(768, 12, 1),
    ),
    public_card(
        "ast-audioset-0.4593",
        "ast",
        "kaldi_fbank",
        "hf-ast",
        "bsd-3-clause",
        f"{HF}MIT/ast-finetuned-audioset-10-10-0.4593",
        "AST fine-tuned on AudioSet (mAP 0.459); the classifier is dropped",
        hub_id="MIT/ast-finetuned-audioset-10-10-0.4593",
        dims=(768, 12, 12),
    ),
    public_card(
        "whisper-tiny",
        "whisper_encoder",
        "whisper_logmel",
        "hf-whisper",
        "apache-2.0",
        f"{HF}openai/whisper-tiny",
        "Whisper tiny's encoder (30-s windows); the decoder is dropped",
        hub_id="openai/whisper-tiny",
        sizes={"dim": 384, "depth": 4, "heads": 6, "n_bins": 80},
        dims=(384, 4, 1),
    ),
    public_card(
        "whisper-base",
        "whisper_encoder",
        "whisper_logmel",
        "hf-whisper",
        "apache-2.0",
        f"{HF}openai/whisper-base",
        "Whisper base's encoder (30-s windows); the decoder is dropped",
        hub_id="openai/whisper-base",
        sizes={"dim": 512, "depth": 6, "heads": 8, "n_bins": 80},
        dims=(512, 6, 1),
    ),
    public_card(
        "beats-iter3",
        "beats",
        "kaldi_fbank",
        "beats",
        "MIT (microsoft/unilm)",
        "https://github.com/microsoft/unilm/tree/master/beats (BEATs_iter3.pt)",
        "BEATs iteration 3, AudioSet-2M self-supervised",
        weights_file="BEATs_iter3.pt",
        dims=(768, 12, 8),
    ),
    public_card(
        "beats-iter3-as2m",
        "beats",
        "kaldi_fbank",
        "beats",
        "MIT (microsoft/unilm)",
        "https://github.com/microsoft/unilm/tree/master/beats (BEATs_iter3_plus_AS2M.pt)",
        "BEATs iteration 3+, fine-tuned on AudioSet-2M (predictor dropped)",
        weights_file="BEATs_iter3_plus_AS2M.pt",
        dims=(768, 12, 8),
    ),
    public_card(
        "dasheng-base",
        "dasheng",
        "centred_mel",
        "dasheng",
        "apache-2.0",
        "https://zenodo.org/records/11511780 (dasheng_base.pt)",
        "Dasheng base (86 M), MAE on 272k h of audio",
        weights_file="dasheng_base.pt",
        dims=(768, 12, 1),
    ),
    public_card(
        "passt-s-kd",
        "passt",
        "passt_mel",
        "passt",
        "apache-2.0 (kkoutini/PaSST)",
        "https://github.com/kkoutini/PaSST/releases (passt-s-kd-ap.486.pt)",
        "PaSST-S with knowledge distillation, AudioSet (mAP 0.486), 32 kHz",
        weights_file="passt-s-kd-ap.486.pt",
        sample_rate=32000,
        dims=(768, 12, 12),
    ),
    public_card(
        "tera-960hr",
        "tera",
        "centred_mel",
        "tera",
        "apache-2.0 (s3prl)",
        "s3prl's tera_logMelBase_T_F_M_AdamW_b32_1m_960hr_drop1 (states-1000000.ckpt)",
        "TERA base (3 blocks), LibriSpeech 960 h (time + frequency + magnitude alteration)",
        weights_file="tera_logMelBase_T_F_M_AdamW_b32_1m_960hr_drop1/states-1000000.ckpt",
        dims=(768, 3, 1),
    ),
    public_card(
        "byol-a-2048",
        "byol_a",
        "centred_mel",
        "byol-a",
        NTT,
        "https://github.com/nttcslab/byol-a (pretrained_weights/AudioNTT2020-BYOLA-64x96d2048.pth)",
        "BYOL-A v1 (AudioNTT2020, d = 2048), AudioSet; scenes pooled mean + max",
        weights_file="AudioNTT2020-BYOLA-64x96d2048.pth",
        dims=(2048, 1, 1),
    ),
    public_card(
        "m2d-vit-base",
        "m2d",
        "centred_mel",
        "m2d",
        NTT,
        "https://github.com/nttcslab/m2d/releases (v0.1.0, m2d_vit_base-80x608p16x16-221006-mr7.zip)",
        "M2D ViT-B/16 (masking ratio 0.7), AudioSet; unzip keeping the folder (its name carries the "
        "geometry); 5 frequency tokens concatenated per step; "
        "converter parity unverified (no PyPI reference)",
        weights_file="m2d_vit_base-80x608p16x16-221006-mr7/checkpoint-300.pth",
        concat=True,
        dims=(768, 12, 5),
    ),
    public_card(
        "eat-base-epoch30",
        "eat",
        "kaldi_fbank",
        "eat",
        "MIT",
        "https://github.com/cwx-worst-one/EAT (EAT-base_epoch30_pt.pt, its Google Drive link)",
        "EAT base, AudioSet-2M, 30 epochs (fairseq checkpoint); converter parity unverified "
        "(no PyPI reference)",
        weights_file="EAT-base_epoch30_pt.pt",
        dims=(768, 12, 8),
    ),
    public_card(
        "audiomae-base",
        "audiomae",
        "kaldi_fbank",
        "audiomae",
        f"CC-BY-NC-4.0 ({NON_COMMERCIAL}; the repository's LICENSE file)",
        "https://github.com/facebookresearch/AudioMAE (pretrained.pth, its Google Drive link)",
        "AudioMAE ViT-B/16, AudioSet-2M pretrained; converter parity unverified (no PyPI "
        "reference)",
        weights_file="audiomae/pretrained.pth",
        dims=(768, 12, 8),
    ),
)
"""The public cards, in this order (registered by :mod:`echoic.zoo.cards.public`)."""
