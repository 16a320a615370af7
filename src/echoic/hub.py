"""Models on the Hugging Face Hub, named ``hf:ORG/NAME`` (``hf:ORG/NAME@REVISION`` for a branch,
tag or commit), and where echoic keeps downloaded public weights.

``echoic.load("hf:facebook/hubert-base-ls960")`` (and every CLI verb that takes a model) downloads the
repository with ``huggingface_hub.snapshot_download`` into the hub's own cache — ``$HF_HUB_CACHE``,
else ``$HF_HOME/hub``, else ``$XDG_CACHE_HOME/huggingface/hub``, else
``~/.cache/huggingface/hub``, read when called — then hands the snapshot folder to the converter
registry's detection (:func:`echoic.cards.find_card`), which converts it once into echoic's cache.
With ``HF_HUB_OFFLINE=1`` (also read when called) nothing is fetched: the cached snapshot is used,
or a one-line :class:`HubError` says how to get it. Only the files a converter reads are fetched:
JSON configs, ``README.md`` (the licence), and the weights — ``*.safetensors`` when the repository
has them, else the pickled ones (``*.bin``, ``*.pt``, ``*.pth``, ``*.ckpt``).

``huggingface_hub`` is imported only here, inside the functions that need it.
"""

from __future__ import annotations

import os
from pathlib import Path

from echoic.errors import CheckpointError

__all__ = [
    "HUB_PREFIX",
    "HubError",
    "cached_snapshot",
    "echoic_cache_dir",
    "hub_cache_dir",
    "hub_offline",
    "hub_snapshot",
    "is_hub_name",
    "parse_hub_name",
    "weights_dir",
]

HUB_PREFIX = "hf:"
CONFIG_PATTERNS = ["*.json", "README.md"]
SAFETENSORS_PATTERNS = ["*.safetensors", "*.safetensors.index.json"]
PICKLE_PATTERNS = ["*.bin", "*.bin.index.json", "*.pt", "*.pth", "*.ckpt"]
SKIPPED = ["training_args.bin", "optimizer.pt", "scheduler.pt", "rng_state*.pth"]
"""Trainer state that sits beside some checkpoints and is never part of a model."""


class HubError(CheckpointError):
    """A hub model could not be fetched or found in the cache (what, why, and how to fix it)."""


def is_hub_name(name: object) -> bool:
    """Whether ``name`` is a ``hf:ORG/NAME`` model name (a string; paths never are)."""
    return isinstance(name, str) and name.startswith(HUB_PREFIX)


def parse_hub_name(name: str) -> tuple[str, str | None]:
    """``("ORG/NAME", revision or None)`` of ``hf:ORG/NAME[@REVISION]``."""
    body = name[len(HUB_PREFIX) :] if name.startswith(HUB_PREFIX) else name
    repo_id, _, revision = body.partition("@")
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(parts) or any(p in {".", ".."} for p in parts):
        raise HubError(
            f"{name!r}: a hub model is named hf:ORG/NAME (optionally @REVISION), e.g. "
            "hf:facebook/wav2vec2-base."
        )
    return repo_id, revision or None


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache, from the environment as it is now (``huggingface_hub`` reads
    it once, at import)."""
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(variable):
            return Path(os.environ[variable]).expanduser()
    home = os.environ.get("HF_HOME")
    if not home:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        home = os.path.join(xdg, "huggingface")
    return Path(home).expanduser() / "hub"


def hub_offline() -> bool:
    """``HF_HUB_OFFLINE`` set to a true value (1, true, yes, on)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def echoic_cache_dir() -> Path:
    """echoic's cache root: ``$ECHOIC_CACHE``, else ``$XDG_CACHE_HOME/echoic``, else
    ``~/.cache/echoic`` (converted models live in its ``converted/``)."""
    root = os.environ.get("ECHOIC_CACHE")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(xdg, "echoic")
    return Path(root).expanduser()


def weights_dir() -> Path:
    """Where public weights that are files, not hub repositories, are expected:
    ``<echoic cache>/weights/`` (the model cards of :mod:`echoic.zoo.public` look there)."""
    return echoic_cache_dir() / "weights"


def _how_to_get(repo_id: str) -> str:
    return (
        f"connect to the network and retry, or pre-download it (`huggingface-cli download "
        f"{repo_id}`, or this same call online) into the hub cache {hub_cache_dir()} — set "
        "HF_HUB_CACHE to use another folder — then HF_HUB_OFFLINE=1 loads it from there"
    )


def _download(repo_id: str, revision: str | None, patterns: list[str], offline: bool) -> Path:
    from huggingface_hub import snapshot_download

    folder = snapshot_download(
        repo_id,
        revision=revision,
        cache_dir=hub_cache_dir(),
        local_files_only=offline,
        allow_patterns=patterns,
        ignore_patterns=SKIPPED,
    )
    return Path(str(folder))


def _has(folder: Path, patterns: list[str]) -> bool:
    return any(any(folder.glob(pattern)) for pattern in patterns)


def hub_snapshot(name: str) -> Path:
    """The local snapshot folder of ``hf:ORG/NAME[@REVISION]``: downloaded (the files a converter
    reads) unless ``HF_HUB_OFFLINE`` is set, else taken from the hub cache. Raises
    :class:`HubError` with one line saying what failed, why, and how to fix it."""
    repo_id, revision = parse_hub_name(name)
    offline = hub_offline()
    try:
        from huggingface_hub import errors
    except ImportError:
        raise HubError(
            f"{name}: loading hub models needs huggingface_hub, not installed here; install: "
            "pip install huggingface_hub"
        ) from None
    try:
        folder = _download(repo_id, revision, CONFIG_PATTERNS + SAFETENSORS_PATTERNS, offline)
        if not _has(folder, SAFETENSORS_PATTERNS):
            folder = _download(repo_id, revision, CONFIG_PATTERNS + PICKLE_PATTERNS, offline)
    except errors.GatedRepoError:
        raise HubError(
            f"{name}: {repo_id!r} is gated; accept its terms on huggingface.co and log in with "
            "`huggingface-cli login`."
        ) from None
    except errors.RepositoryNotFoundError:
        raise HubError(
            f"{name}: no repository {repo_id!r} on the Hugging Face Hub (or it is private: log in "
            "with `huggingface-cli login`); check the name."
        ) from None
    except errors.RevisionNotFoundError:
        raise HubError(
            f"{name}: {repo_id!r} has no revision {revision!r}; name a branch, tag or commit."
        ) from None
    except Exception as err:  # offline, no network, or not cached: all fixed the same way
        why = "HF_HUB_OFFLINE is set and it is not in the cache" if offline else type(err).__name__
        detail = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise HubError(
            f"{name}: could not get {repo_id!r} from the Hugging Face Hub ({why}"
            f"{': ' + detail[:160] if detail and not offline else ''}); {_how_to_get(repo_id)}."
        ) from None
    return folder


def cached_snapshot(repo_id: str, revision: str | None = None) -> Path | None:
    """The cached snapshot folder of ``repo_id`` when it holds weights, without any network access
    (``refs/<revision or main>`` → ``snapshots/<commit>/``); None when it is not cached."""
    repo = hub_cache_dir() / f"models--{repo_id.replace('/', '--')}"
    ref = repo / "refs" / (revision or "main")
    commit = ref.read_text().strip() if ref.is_file() else (revision or "")
    folder = repo / "snapshots" / commit
    if not commit or not folder.is_dir():
        return None
    return folder if _has(folder, SAFETENSORS_PATTERNS + PICKLE_PATTERNS) else None
