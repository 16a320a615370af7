"""Converted models against their references: CPU forward time, one run, alternating rounds.

Three published base sizes with random weights, each built in its reference implementation, saved
in its public on-disk format, converted by ``echoic convert`` and timed on the same input:

- **HuBERT-base** — transformers ``HubertModel(HubertConfig())`` (``save_pretrained`` →
  ``hf-wav2vec2``): the 10-s waveform → every layer, both sides (the convolutional feature encoder
  is in the model);
- **BEATs-base** — ESPnet's ``BeatsEncoder`` (unilm's BEATs code; ``tests/convert/beats_reference``)
  with BEATs iter3's config (``BEATs_iter*.pt`` layout → ``beats``): the waveform → every layer,
  both sides including the Kaldi fbank (torchaudio's in the reference);
- **AST-base** — transformers ``ASTModel(ASTConfig())`` (1024 frames × 128 bins, strides 10:
  1212 patches; ``save_pretrained`` → ``hf-ast``): the fbank features → every layer (transformers'
  model takes features; its extractor is separate).

fp32, eval, ``torch.inference_mode``, the default thread count unless ``--threads``. After one
warm-up call each, ``--rounds`` rounds time echoic and the reference back to back, the order
reversed every round so that load from other processes hits both alike; the medians give the
speed-up (reference time / echoic time; the goal is ≥ 1.2×), and the last layers' max |diff|
shows both computed the same thing. Needs transformers and, for BEATs, the converter references
of ``make test-converters`` (ESPnet; torchaudio in ``.venv/converter-refs``); a missing one is
reported and skipped.

Run::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_convert.py
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_convert.py --rounds 3 --seconds 5 --only ast
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from echoic.checkpoint import EchoicModel, load_dir
from echoic.convert import convert
from echoic.embed.precision import cpu_flags, cpu_model
from echoic.types import AudioBatch, Features

REPO = Path(__file__).resolve().parents[1]
SR = 16000
BEATS_BASE: dict[str, Any] = {
    "encoder_layers": 12,
    "encoder_embed_dim": 768,
    "encoder_ffn_embed_dim": 3072,
    "encoder_attention_heads": 12,
    "embed_dim": 512,
    "input_patch_size": 16,
    "conv_pos": 128,
    "conv_pos_groups": 16,
    "conv_bias": False,
    "deep_norm": True,
    "layer_norm_first": False,
    "relative_position_embedding": True,
    "num_buckets": 320,
    "max_distance": 800,
    "gru_rel_pos": True,
    "activation_fn": "gelu",
    "dropout": 0.0,
    "attention_dropout": 0.0,
    "activation_dropout": 0.0,
    "encoder_layerdrop": 0.0,
    "dropout_input": 0.0,
    "layer_wise_gradient_decay_ratio": 1.0,
    "finetuned_model": False,
}
"""BEATs iter3's published configuration (768 wide, 12 DeepNorm blocks, query-gated bias)."""

Runner = Callable[[], torch.Tensor]


def hubert(tmp: Path, wave: torch.Tensor) -> tuple[Runner, Runner]:
    from transformers import HubertConfig, HubertModel

    torch.manual_seed(0)
    reference = HubertModel(HubertConfig()).eval()
    reference.save_pretrained(tmp / "hubert")
    ours = load_dir(convert(tmp / "hubert", tmp / "hubert-echoic"))
    batch = AudioBatch(wave, torch.full((wave.shape[0],), wave.shape[1]), SR)
    return (lambda: ours(batch).layers[-1]), (lambda: reference(wave).last_hidden_state)


def beats(tmp: Path, wave: torch.Tensor) -> tuple[Runner, Runner]:
    sys.path.insert(0, str(REPO / "tests" / "convert"))
    from beats_reference import CASES, beats_module

    module = beats_module()
    CASES["beats-base"] = BEATS_BASE
    torch.manual_seed(0)
    reference = module.BeatsEncoder(input_size=1, beats_config=dict(BEATS_BASE)).eval()
    path = tmp / "BEATs_iter3_random.pt"
    torch.save({"cfg": dict(BEATS_BASE), "model": reference.state_dict()}, path)
    ours = load_dir(convert(path, tmp / "beats-echoic"))
    batch = AudioBatch(wave, torch.full((wave.shape[0],), wave.shape[1]), SR)
    return (lambda: ours(batch).layers[-1]), (lambda: reference.extract_features(wave)[0])


def ast(tmp: Path, wave: torch.Tensor) -> tuple[Runner, Runner]:
    from transformers import ASTConfig, ASTModel

    torch.manual_seed(0)
    reference = ASTModel(ASTConfig()).eval()
    reference.save_pretrained(tmp / "ast")
    ours: EchoicModel = load_dir(convert(tmp / "ast", tmp / "ast-echoic"))
    frames = reference.config.max_length
    gen = torch.Generator().manual_seed(1)
    values = torch.randn(wave.shape[0], frames, reference.config.num_mel_bins, generator=gen)
    feats = Features(values.transpose(1, 2), torch.full((wave.shape[0],), frames), 0.01, 0.0125)
    return (lambda: ours.encoder(feats).layers[-1]), (
        lambda: reference(values).last_hidden_state[:, 2:]
    )


FAMILIES: dict[str, Callable[[Path, torch.Tensor], tuple[Runner, Runner]]] = {
    "hubert-base": hubert,
    "beats-base": beats,
    "ast-base": ast,
}
REFERENCES = {
    "hubert-base": "transformers HubertModel",
    "beats-base": "ESPnet BeatsEncoder",
    "ast-base": "transformers ASTModel",
}


def timed(fn: Runner) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench(name: str, ours: Runner, reference: Runner, rounds: int) -> dict[str, Any]:
    with torch.inference_mode():
        a, b = ours(), reference()  # warm-up, and the outputs compared
        diff = float((a - b).abs().max()) if a.shape == b.shape else float("nan")
        times: dict[str, list[float]] = {"echoic": [], "reference": []}
        for r in range(rounds):
            order = [("echoic", ours), ("reference", reference)]
            for label, fn in order if r % 2 == 0 else order[::-1]:
                times[label].append(timed(fn))
    med = {k: statistics.median(v) for k, v in times.items()}
    per_round = [r / e for e, r in zip(times["echoic"], times["reference"], strict=True)]
    return {
        "name": name,
        "median": med,
        "ratio": med["reference"] / med["echoic"],
        "rounds": per_round,
        "diff": diff,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds after one warm-up")
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length (HuBERT, BEATs)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: the default)")
    parser.add_argument("--only", action="append", choices=sorted(FAMILIES), help="repeatable")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=FutureWarning)  # the references' deprecated calls
    try:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # save_pretrained's "Writing model shards"
    except ImportError:
        pass
    flags = sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16"})
    print(f"CPU: {cpu_model()}; flags: {' '.join(flags) or '-'}; {torch.get_num_threads()} threads")
    print(
        f"torch {torch.__version__}; batch {args.batch} × {args.seconds:g} s; {args.rounds} rounds"
    )
    wave = torch.randn(
        args.batch, int(args.seconds * SR), generator=torch.Generator().manual_seed(0)
    )
    wave = 0.1 * wave
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.only or list(FAMILIES):
            try:
                ours, reference = FAMILIES[name](Path(scratch), wave)
            except BaseException as err:  # a missing reference (pytest's skip is a BaseException)
                if isinstance(err, KeyboardInterrupt):
                    raise
                print(f"{name}: skipped ({type(err).__name__}: {str(err).splitlines()[0][:120]})")
                continue
            results.append(bench(name, ours, reference, args.rounds))
            row = results[-1]
            print(
                f"{name:12s} echoic {row['median']['echoic']:.3f} s, {REFERENCES[name]} "
                f"{row['median']['reference']:.3f} s → {row['ratio']:.2f}× (rounds: "
                f"{' '.join(f'{x:.2f}' for x in row['rounds'])}; last layer max |diff| "
                f"{row['diff']:.1e})"
            )
    short = [r["name"] for r in results if r["ratio"] < 1.2]
    print(f"goal ≥ 1.2× the reference: {'met' if not short else 'NOT met for ' + ', '.join(short)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
