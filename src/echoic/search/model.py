"""The embedding model of an index: found at build time, rebuilt to embed audio queries.

An ``echoic embed`` Parquet file names its model by label and identity only. ``index build``
records how to rebuild the model — ``source`` (a registered name or a model directory) and the
embedding ``options`` (``layer``, ``chunk_s``, ``shifts``) — when it can prove them right: the
model built from them must have the Parquet's identity. Without ``--model`` it tries the first
word of the label (``echoic-tiny``, ``logmel_stats`` …) with no options. Audio queries are
embedded by that model, and refused when a ``--model`` given at search time has another identity.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from echoic.config import to_dict
from echoic.embed.base import EmbeddingModel
from echoic.errors import EchoicError
from echoic.search.layout import ModelInfo
from echoic.search.rows import EmbeddingSource
from echoic.zoo.registry import resolve_model


def _resolve(source: str, options: dict[str, Any]) -> EmbeddingModel:
    opts = dict(options)
    if isinstance(
        opts.get("layer"), list
    ):  # JSON has no tuples: per-layer weights come back as lists
        opts["layer"] = tuple(opts["layer"])
    return resolve_model(source, **opts)


def model_config(model: EmbeddingModel) -> dict[str, Any] | None:
    """The model's configuration as JSON: an echoic Embedder's model + embedding configs, a zoo
    model's config dataclass; ``None`` when it has none."""
    out: dict[str, Any] = {}
    inner = getattr(model, "model", None)
    inner_config = getattr(inner, "config", None)
    if dataclasses.is_dataclass(inner_config) and not isinstance(inner_config, type):
        out["model"] = to_dict(inner_config)
    own = getattr(model, "config", None)
    if dataclasses.is_dataclass(own) and not isinstance(own, type):
        out["embed" if "model" in out else "model"] = to_dict(own)
    return out or None


def _source_name(spec: str) -> str:
    """A directory is recorded as an absolute path (the index may be used from elsewhere)."""
    path = Path(spec)
    return str(path.resolve()) if path.is_dir() else spec


def describe_model(
    source: EmbeddingSource, spec: str | None = None, options: dict[str, Any] | None = None
) -> tuple[ModelInfo, str]:
    """The :class:`ModelInfo` for an index of ``source``'s vectors, and a line saying how audio
    queries will be embedded. ``spec`` (+ ``options``) must rebuild the Parquet's model."""
    options = {k: v for k, v in (options or {}).items() if v is not None}
    info = ModelInfo(label=source.model, identity=source.identity)
    info.sample_rate = source.meta.get("sample_rate")
    if spec is not None:
        model = _resolve(spec, options)
        if model.identity != source.identity:
            raise EchoicError(
                f"--model {spec} {options or ''} has identity {model.identity}, but "
                f"{source.path} was embedded by {source.model!r} (identity {source.identity}); "
                "pass the model and the --layer / --chunk-s / --shifts that `echoic embed` used"
            )
        return _recorded(info, spec, options, model)
    guess = source.model.split(" ")[0]
    try:
        found: EmbeddingModel | None = _resolve(guess, {})
    except Exception:  # not a registered name: the label alone cannot rebuild it
        found = None
    if found is not None and found.identity == source.identity:
        return _recorded(info, guess, {}, found)
    return info, (
        f"could not rebuild {source.model!r} from its label: audio queries will need --model "
        "(the model, and options, that `echoic embed` used); row-id queries work as they are"
    )


def _recorded(
    info: ModelInfo, spec: str, options: dict[str, Any], model: EmbeddingModel
) -> tuple[ModelInfo, str]:
    info.source = _source_name(spec)
    info.options = {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}
    info.config = model_config(model)
    info.sample_rate = int(model.sample_rate)
    return info, f"audio queries are embedded with {info.source} {info.options or ''}".rstrip()


def query_model(
    info: ModelInfo, spec: str | None = None, options: dict[str, Any] | None = None
) -> EmbeddingModel:
    """The model that embeds audio queries for an index of ``info``'s vectors.

    ``spec`` (+ ``options``) overrides the recorded source; a model whose identity is not the
    index's is refused (its vectors would not be comparable).
    """
    if spec is None:
        if info.source is None:
            raise EchoicError(
                f"this index does not know how to rebuild its model {info.label!r} (identity "
                f"{info.identity}); pass --model NAME_OR_DIR (and the --layer / --chunk-s / "
                "--shifts that `echoic embed` used) to embed audio queries"
            )
        spec, options = info.source, info.options
    options = {k: v for k, v in (options or {}).items() if v is not None}
    model = _resolve(spec, options)
    if model.identity != info.identity:
        raise EchoicError(
            f"refusing queries embedded by {model.label!r} (identity {model.identity}): this "
            f"index holds vectors of {info.label!r} (identity {info.identity}), and vectors of "
            "two models are not comparable. Search with that model (--model, with the options "
            "`echoic embed` used) or build an index with this one"
        )
    return model
