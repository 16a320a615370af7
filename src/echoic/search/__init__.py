"""echoic.search: nearest-neighbour search over ``echoic embed`` outputs (``echoic index``,
``echoic search``; docs/search.md).

Public API::

    from echoic.search import SearchIndex, build_index, add_to_index
    build_index(["emb.parquet"], "idx/", kind="hnsw")        # or level="timestamp"
    index = SearchIndex.open("idx/")
    scores, ids = index.search(vectors, k=10)                 # (Q, D) → (Q, k), (Q, k)

Modules: ``rows`` (Parquet rows → vectors, time windows), ``kinds`` (the FAISS index kinds),
``layout`` (the index folder), ``index`` (build / add / open / search), ``model`` (the model that
embeds audio queries, identity-checked), ``query`` (query arguments → vectors → answers).
"""

from echoic.search.index import IndexReport, SearchIndex, add_to_index, build_index
from echoic.search.layout import IndexMeta, ModelInfo

__all__ = ["IndexMeta", "IndexReport", "ModelInfo", "SearchIndex", "add_to_index", "build_index"]
