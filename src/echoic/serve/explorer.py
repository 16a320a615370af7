"""The explorer's state: an opened index, its map, labels and model, and what each request may read.

Nothing here takes a path from a client. Audio is named by its row id; :meth:`Explorer.audio_path`
resolves the id to the path ``items.parquet`` records, follows symlinks, and gives the file
only when it is a regular file inside one of the collection's roots (default: the deepest folder
holding every indexed file). An id out of range, a file that is gone, a symlink pointing out of
the collection → ``None`` (the server answers 404). Nothing here writes anywhere but the map
cache in the index folder (:mod:`echoic.serve.projection`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from echoic.data.audio import AUDIO_EXTENSIONS, load_audio, require_min_samples
from echoic.embed.base import EmbeddingModel
from echoic.errors import AudioError, EchoicError
from echoic.search.index import SearchIndex
from echoic.search.model import query_model
from echoic.search.query import score_name
from echoic.serve.decode import DecodeError, DecodeLimits, decode_upload
from echoic.serve.labels import (
    Colouring,
    collection_root,
    colourings,
    default_scheme,
    row_labels,
    top_folders,
)
from echoic.serve.projection import CollectionMap, collection_map
from echoic.serve.thumbnail import render_thumbnail

log = logging.getLogger("echoic.serve")

THUMBNAIL_MAX_S = 30.0
"""A thumbnail shows at most this many seconds of its row (from the row's offset)."""


@dataclass
class ExplorerConfig:
    """What ``echoic serve`` serves and how (docs/search.md, "The web explorer")."""

    index: Path
    host: str = "127.0.0.1"
    port: int = 8765
    k: int = 10
    max_k: int = 100
    max_points: int = 50_000
    limits: DecodeLimits = field(default_factory=DecodeLimits)
    model: str | None = None
    model_options: dict[str, Any] = field(default_factory=dict)
    roots: list[Path] = field(default_factory=list)
    allowed_hosts: list[str] | None = None
    load_model: bool = True
    thumbnail_cache: int = 512


class Explorer:
    """An opened index ready to answer the explorer's requests (see module docstring)."""

    def __init__(self, config: ExplorerConfig) -> None:
        self.config = config
        self.index = SearchIndex.open(config.index)
        items = self.index.items
        self.paths: list[str] = [str(p) for p in items.column("path").to_pylist()]
        self.offsets = np.asarray(items.column("offset_s").to_numpy(), np.float64)
        self.durations = np.asarray(items.column("duration_s").to_numpy(), np.float64)
        column = items.column("label").to_pylist() if "label" in items.column_names else None
        self.labels = row_labels(self.paths, column)
        self.root = collection_root(self.paths)
        given = [str(r) for r in config.roots] or [self.root]
        self.roots = [os.path.realpath(r) for r in given]
        self.map: CollectionMap = collection_map(
            self.index.directory, self.index.meta, self.index.vectors, config.max_points
        )
        on_map = self.map.ids
        folders = top_folders([self.paths[i] for i in on_map], self.root)
        self.schemes: dict[str, Colouring] = colourings(
            [self.labels[i] for i in on_map], folders, self.map.clusters
        )
        self.default_scheme = default_scheme(self.schemes)
        self._model: EmbeddingModel | None = None
        self.model_error: str | None = None
        self._model_lock = threading.Lock()
        self._thumbnails: OrderedDict[int, bytes] = OrderedDict()
        self._thumb_lock = threading.Lock()
        if config.load_model:
            self.model()

    def __len__(self) -> int:
        return len(self.paths)

    # -- the model that embeds uploads ----------------------------------------------------------
    def model(self) -> EmbeddingModel | None:
        """The index's model (built once), or ``None`` with :attr:`model_error` saying why."""
        with self._model_lock:
            if self._model is None and self.model_error is None:
                try:
                    self._model = query_model(
                        self.index.meta.model, self.config.model, self.config.model_options
                    )
                except Exception as err:  # uploads are refused; everything else still works
                    self.model_error = str(err)
                    log.warning("uploads cannot be searched: %s", err)
            return self._model

    # -- rows --------------------------------------------------------------------------------
    def row(self, text: str) -> int | None:
        """The row id in ``text`` (decimal digits only), or ``None`` when it is not one."""
        if not (text.isascii() and text.isdigit() and len(text) <= 12):
            return None
        row = int(text)
        return row if row < len(self) else None

    def name(self, row: int) -> str:
        """The row's file, relative to the collection root (never an absolute path)."""
        return os.path.relpath(self.paths[row], self.root)

    def item(self, row: int) -> dict[str, Any]:
        offset, duration = float(self.offsets[row]), float(self.durations[row])
        fragment = f"#t={offset:.3f},{offset + duration:.3f}" if offset > 0 else ""
        return {
            "id": row,
            "name": self.name(row),
            "label": self.labels[row],
            "offset_s": offset,
            "duration_s": duration,
            "audio": f"/api/audio/{row}{fragment}",
            "thumbnail": f"/api/thumbnail/{row}",
        }

    def info(self) -> dict[str, Any]:
        meta = self.index.meta
        return {
            "count": len(self),
            "model": meta.model.label,
            "identity": meta.model.identity,
            "level": meta.level,
            "kind": meta.kind,
            "metric": meta.metric,
            "score": score_name(meta.metric),
            "k": self.config.k,
            "max_k": self.config.max_k,
            "uploads": self.model() is not None,
            "uploads_error": self.model_error,
            "max_upload_bytes": self.config.limits.max_bytes,
            "max_upload_s": self.config.limits.max_duration_s,
            "map": {"method": self.map.method, "points": len(self.map.ids)},
            "schemes": list(self.schemes),
            "default_scheme": self.default_scheme,
        }

    def map_json(self) -> dict[str, Any]:
        return {
            "method": self.map.method,
            "ids": self.map.ids.tolist(),
            "x": np.round(self.map.xy[:, 0], 4).tolist(),
            "y": np.round(self.map.xy[:, 1], 4).tolist(),
            "schemes": {name: c.as_json() for name, c in self.schemes.items()},
            "default_scheme": self.default_scheme,
        }

    # -- search ------------------------------------------------------------------------------
    def _hits(self, vector: np.ndarray, k: int, skip: int | None) -> list[dict[str, Any]]:
        scores, ids = self.index.search(vector[None, :], k + (skip is not None))
        hits = []
        for score, row in zip(scores[0], ids[0], strict=True):
            if row < 0 or int(row) == skip:
                continue
            hits.append({**self.item(int(row)), "score": float(score)})
        for rank, hit in enumerate(hits[:k], 1):
            hit["rank"] = rank
        return hits[:k]

    def neighbours(self, row: int, k: int) -> dict[str, Any]:
        """The ``k`` nearest rows of ``row`` (itself left out)."""
        return {"query": self.item(row), "hits": self._hits(self.index.vector(row), k, row)}

    def query_upload(self, data: bytes, suffix: str, k: int) -> dict[str, Any]:
        """The ``k`` nearest rows of an uploaded audio file (decoded in a child process, embedded
        with the index's model). Raises :class:`DecodeError` with the HTTP status to answer."""
        model = self.model()
        if model is None:
            raise DecodeError(f"this explorer cannot embed uploads: {self.model_error}", 503)
        mono = int(getattr(model, "channels", 1)) == 1
        wave = decode_upload(data, suffix, int(model.sample_rate), mono, self.config.limits)
        try:
            require_min_samples(wave, int(model.min_samples), "the upload")
        except AudioError as err:
            raise DecodeError(err.cause + (f" ({err.fix})" if err.fix else ""), 422) from None
        with self._model_lock:
            emb = model.embed([wave])[0]
        level = self.index.meta.level
        pooled = emb.scene if level == "scene" else emb.timestamps.float().mean(0)
        vector = np.asarray(pooled.detach().float().cpu().numpy(), np.float32)
        seconds = float(wave.shape[-1]) / float(model.sample_rate)
        return {"query": {"duration_s": seconds}, "hits": self._hits(vector, k, None)}

    # -- files -------------------------------------------------------------------------------
    def _inside_roots(self, real: str) -> bool:
        return any(
            real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in self.roots
        )

    def audio_path(self, row: int) -> Path | None:
        """The real path of ``row``'s audio when it may be served (module docstring), else None."""
        if not 0 <= row < len(self):
            return None
        recorded = self.paths[row]
        if not os.path.isabs(recorded):
            return None
        real = os.path.realpath(recorded)
        if not self._inside_roots(real):
            log.warning(
                "refused row %d: %s resolves to %s, outside the collection (%s); serve it with "
                "--allow-root if it belongs to it",
                row,
                recorded,
                real,
                ", ".join(self.roots),
            )
            return None
        if Path(real).suffix.lower() not in AUDIO_EXTENSIONS or not os.path.isfile(real):
            return None
        return Path(real)

    def thumbnail(self, row: int) -> bytes | None:
        """PNG of ``row``'s audio (cached, least recently used dropped), or None (unreadable)."""
        with self._thumb_lock:
            if row in self._thumbnails:
                self._thumbnails.move_to_end(row)
                return self._thumbnails[row]
        path = self.audio_path(row)
        if path is None:
            return None
        duration = min(float(self.durations[row]), THUMBNAIL_MAX_S)
        try:
            wave, rate = load_audio(
                path,
                offset_s=float(self.offsets[row]),
                duration_s=duration if duration > 0 else None,
                max_duration_s=THUMBNAIL_MAX_S + 1.0,
            )
        except (AudioError, EchoicError, ValueError) as err:
            log.warning("no thumbnail for row %d: %s", row, err)
            return None
        png = render_thumbnail(wave, rate)
        with self._thumb_lock:
            self._thumbnails[row] = png
            while len(self._thumbnails) > self.config.thumbnail_cache:
                self._thumbnails.popitem(last=False)
        return png
