"""Tokenizers: frames → discrete ids, one file per method, fit → save → apply batched.

``build_tokenizer(name, input_dim, config)`` builds a registered tokenizer (``random_projection``,
``kmeans``, ``rvq``, ``mvq``, ``beats_acoustic``); ``load_tokenizer(dir)`` reads a saved one. See
:class:`echoic.tokenizers.base.Tokenizer` for the contract and ``docs/tokenizers.md``.
"""

from echoic.tokenizers.base import TOKENIZERS, Tokenizer, build_tokenizer, load_tokenizer

__all__ = ["TOKENIZERS", "Tokenizer", "build_tokenizer", "load_tokenizer"]
