"""echoic.serve: ``echoic serve IDX``, a web explorer of a search index (docs/search.md).

A page on 127.0.0.1 shows a 2-D map of the collection (UMAP when installed, PCA otherwise),
coloured by label, folder or k-means cluster; a click on a point lists its nearest neighbours
with audio players and waveform/spectrogram thumbnails; a file dropped on the page (or chosen)
is embedded with the index's model and searched; a row id can be searched directly.

Modules: ``explorer`` (the opened index, its map, labels, model; which file a row may serve),
``app`` (the Starlette routes and limits), ``decode`` (uploads decoded in a child process),
``projection`` (the map, cached beside the index), ``labels`` (colourings), ``thumbnail``
(PNG rendering), ``server`` (uvicorn). Needs the ``serve`` extra: ``pip install 'echoic[serve]'``.

Python::

    from echoic.serve import ExplorerConfig, run_server
    run_server(ExplorerConfig(index=Path("idx/")))
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Imported lazily: the decoding child processes import ``echoic.serve.decode`` and must not pay
# for torch and FAISS.
_LAZY = {
    "Explorer": "echoic.serve.explorer",
    "ExplorerConfig": "echoic.serve.explorer",
    "run_server": "echoic.serve.server",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'echoic.serve' has no attribute {name!r}")
