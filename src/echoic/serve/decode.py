"""Uploaded audio decoded in a child process, with limits: a malformed file cannot take the server down.

Each upload is written to a private temporary file (outside the collection) and decoded by
:func:`echoic.data.audio.load_audio` in a fresh Python process (``python -I -m
echoic.serve.decode``: about 0.15 s to start, it imports NumPy and the decoders, not torch). The
child runs under an address-space and a CPU-time limit; the parent waits at most ``timeout_s``
and kills it after that. Whatever happens in the child — a decoder crash, a hang, a memory
blow-up — the request gets an error and the server goes on. The child writes raw float32
samples to its standard output (no pickle), or a JSON error.
"""

from __future__ import annotations

import json
import os
import resource
import struct
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass

import numpy as np

from echoic.data.audio import load_audio
from echoic.errors import AudioError


@dataclass
class DecodeLimits:
    """How much an upload may cost: bytes received, seconds of audio decoded, the child's CPU
    seconds and memory, and the wall-clock wait."""

    max_bytes: int = 20 * 2**20
    max_duration_s: float = 60.0
    timeout_s: float = 20.0
    memory_bytes: int = 2 * 2**30  # address space the child may add to what it starts with


class DecodeError(Exception):
    """The upload could not be decoded; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


_OK, _FAIL = b"K", b"E"


def _vm_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _limit_self(limits: DecodeLimits) -> None:
    try:
        budget = _vm_bytes() + limits.memory_bytes
        resource.setrlimit(resource.RLIMIT_AS, (budget, budget))
        cpu = max(1, int(limits.timeout_s))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    except (OSError, ValueError):  # a platform without these limits still has the timeout
        pass


def _child_answer(path: str, sample_rate: int, mono: bool, limits: DecodeLimits) -> bytes:
    """``K`` + channels (uint32) + float32 samples, or ``E`` + JSON ``{error, status}``."""
    try:
        x, _ = load_audio(
            path, sample_rate=sample_rate, mono=mono, max_duration_s=limits.max_duration_s
        )
    except AudioError as err:
        status = 413 if "too long" in err.cause else 422
        return _FAIL + json.dumps({"error": err.cause, "status": status}).encode()
    except MemoryError:
        failure = {"error": "decoding needed more memory than an upload may use", "status": 413}
        return _FAIL + json.dumps(failure).encode()
    except Exception as err:  # any decoder failure is the upload's fault, not the server's
        failure = {"error": f"{type(err).__name__}: {err}", "status": 422}
        return _FAIL + json.dumps(failure).encode()
    x = np.ascontiguousarray(x, dtype=np.float32)
    channels = 1 if x.ndim == 1 else int(x.shape[0])
    return _OK + struct.pack("<I", channels) + x.tobytes()


def decode_upload(
    data: bytes, suffix: str, sample_rate: int, mono: bool, limits: DecodeLimits
) -> np.ndarray:
    """The samples of an uploaded file at ``sample_rate``: ``(S,)`` mono or ``(C, S)``.

    Raises :class:`DecodeError` (with the HTTP status: 413 too long or too big to decode, 422
    not audio, or the decoder died or hung) — never anything that stops the server.
    """
    if not data:
        raise DecodeError("the upload is empty; expected the bytes of an audio file", 422)
    safe_suffix = suffix if suffix.isascii() and suffix[1:].isalnum() and len(suffix) < 8 else ""
    handle, path = tempfile.mkstemp(prefix="echoic-upload-", suffix=safe_suffix)
    try:
        with os.fdopen(handle, "wb") as fh:
            fh.write(data)
        return _decode_in_child(path, sample_rate, mono, limits)
    finally:
        os.unlink(path)


def _decode_in_child(path: str, sample_rate: int, mono: bool, limits: DecodeLimits) -> np.ndarray:
    request = json.dumps(
        {"path": path, "sample_rate": sample_rate, "mono": mono, "limits": asdict(limits)}
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-m", "echoic.serve.decode"],
            input=request.encode(),
            capture_output=True,
            timeout=limits.timeout_s,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise DecodeError(
            f"decoding took longer than {limits.timeout_s:g} s; expected an audio file that "
            "decodes quickly (the decoder was stopped)",
            422,
        ) from None
    message = done.stdout
    if done.returncode != 0 or message[:1] not in (_OK, _FAIL):
        raise DecodeError(
            f"the decoder stopped without an answer (exit code {done.returncode}); the file is "
            "probably malformed — try converting it to WAV or FLAC",
            422,
        )
    if message[:1] == _FAIL:
        failure = json.loads(message[1:])
        text = str(failure["error"]).replace(path, "the upload")  # no server paths in answers
        raise DecodeError(text, int(failure["status"]))
    (channels,) = struct.unpack("<I", message[1:5])
    samples = np.frombuffer(message[5:], dtype=np.float32).copy()
    return samples if mono or channels == 1 else samples.reshape(channels, -1)


def main() -> None:
    """The child: a JSON request on stdin (path, sample rate, mono, limits), the answer on stdout."""
    request = json.loads(sys.stdin.buffer.read())
    limits = DecodeLimits(**request["limits"])
    _limit_self(limits)
    answer = _child_answer(
        request["path"], int(request["sample_rate"]), bool(request["mono"]), limits
    )
    sys.stdout.buffer.write(answer)
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
