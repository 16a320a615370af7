"""Index build / add / open / search on synthetic vectors: every kind, recall, refusals, layout."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from search_helpers import clustered, write_embeddings

from echoic.errors import EchoicError
from echoic.search import SearchIndex, add_to_index, build_index
from echoic.search.kinds import resolve_params
from echoic.search.rows import windows


def exact_neighbours(base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    b = base / np.linalg.norm(base, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    return np.argsort(-(q @ b.T), axis=1, kind="stable")[:, :k]


def overlap(ids: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(ids, truth, strict=True)]))


@pytest.mark.parametrize("kind", ["flat", "ivf", "ivfpq", "hnsw"])
def test_build_open_search_round_trip(tmp_path, kind):
    x, _ = clustered(600, 16, 12)
    emb = write_embeddings(tmp_path / "emb.parquet", x)
    report = build_index([emb], tmp_path / "idx", kind=kind, progress=False)
    assert report.added == 600 and report.duplicates == 0
    index = SearchIndex.open(tmp_path / "idx")
    assert len(index) == 600 and index.meta.kind == kind and index.meta.dims == 16
    scores, ids = index.search(x[:20], 5)
    assert ids.shape == (20, 5)
    itself = ids == np.arange(20)[:, None]
    if kind == "ivfpq":  # 600 vectors: coarse codes, approximate scores
        assert itself.any(1).mean() >= 0.9
    else:  # each vector finds itself first
        assert itself[:, 0].all()
    assert np.all(np.diff(scores, axis=1) <= 1e-6)  # cosine similarity, nearest first
    item = index.item(7)
    assert item["path"] == "/clips/clip00007.wav" and item["offset_s"] == 0.0
    np.testing.assert_allclose(index.vector(7), x[7] / np.linalg.norm(x[7]), rtol=1e-5)


def test_layout_files_and_sidecar(tmp_path):
    x, _ = clustered(50, 8, 3)
    emb = write_embeddings(tmp_path / "emb.parquet", x, identity="m-123", model="m (test)")
    build_index([emb], tmp_path / "idx", kind="hnsw", metric="l2", progress=False)
    names = sorted(p.name for p in (tmp_path / "idx").iterdir())
    assert names == ["index.faiss", "index.json", "items.parquet", "vectors.npy"]
    meta = json.loads((tmp_path / "idx" / "index.json").read_text())
    assert meta["format_version"] == 1 and meta["echoic_version"]
    assert meta["model"]["identity"] == "m-123" and meta["model"]["label"] == "m (test)"
    assert (meta["kind"], meta["metric"], meta["level"], meta["dims"], meta["count"]) == (
        "hnsw",
        "l2",
        "scene",
        8,
        50,
    )
    assert meta["params"] == {"M": 32, "ef_construction": 80, "ef_search": 64}
    items = pq.read_table(tmp_path / "idx" / "items.parquet")
    assert items.column_names == [
        "id",
        "path",
        "offset_s",
        "duration_s",
        "clip_duration_s",
        "source",
    ]
    assert items.column("id").to_pylist() == list(range(50))
    vectors = np.load(tmp_path / "idx" / "vectors.npy", allow_pickle=False)
    np.testing.assert_array_equal(vectors, x)  # l2: stored as given
    _, ids = SearchIndex.open(tmp_path / "idx").search(x[3] + 0.01, 1)
    assert ids[0, 0] == 3


def test_exact_versus_approximate_recall(tmp_path):
    """Flat is exact; IVF, IVF-PQ and HNSW keep most of the exact top 10 on a seeded set."""
    x, _ = clustered(4000, 32, 40, seed=1)
    rng = np.random.default_rng(2)
    queries = x[rng.choice(4000, 100, replace=False)] + 0.3 * rng.standard_normal((100, 32))
    emb = write_embeddings(tmp_path / "emb.parquet", x)
    truth = exact_neighbours(x, queries, 10)
    recall = {}
    for kind in ("flat", "ivf", "ivfpq", "hnsw"):
        build_index([emb], tmp_path / kind, kind=kind, progress=False)
        index = SearchIndex.open(tmp_path / kind)
        recall[kind] = overlap(index.search(queries, 10)[1], truth)
        if kind == "ivfpq":  # the PQ scores alone, without re-scoring from vectors.npy
            index.set_search_params(rerank=0)
            recall["ivfpq, rerank 0"] = overlap(index.search(queries, 10)[1], truth)
    assert recall["flat"] == 1.0
    assert recall["hnsw"] >= 0.95 and recall["ivf"] >= 0.9 and recall["ivfpq"] >= 0.9, recall
    assert 0.4 <= recall["ivfpq, rerank 0"] < recall["ivfpq"], recall  # 8 bytes for 32 dims


def test_add_appends_and_is_idempotent(tmp_path):
    x, _ = clustered(300, 16, 5)
    first = write_embeddings(tmp_path / "a.parquet", x[:200], [f"/c/{i}.wav" for i in range(200)])
    second = write_embeddings(
        tmp_path / "b.parquet", x[150:], [f"/c/{i}.wav" for i in range(150, 300)]
    )
    build_index([first], tmp_path / "idx", kind="ivf", progress=False)
    report = add_to_index(tmp_path / "idx", [second], progress=False)
    assert (report.added, report.duplicates) == (100, 50)  # rows 150..199 were there already
    again = add_to_index(tmp_path / "idx", [second, first], progress=False)
    assert (again.added, again.duplicates) == (0, 350)  # every row of both, again
    index = SearchIndex.open(tmp_path / "idx")
    assert len(index) == 300 and index.index.ntotal == 300
    paths = index.items.column("path").to_pylist()
    assert len(set(paths)) == 300 and index.items.column("id").to_pylist() == list(range(300))
    _, ids = index.search(x[250], 1)
    assert paths[ids[0, 0]] == "/c/250.wav"  # an added row is found
    assert [s["rows_added"] for s in index.meta.sources] == [200, 100]  # no-op adds: unchanged


def test_other_model_is_refused(tmp_path):
    x, _ = clustered(40, 8, 2)
    mine = write_embeddings(tmp_path / "a.parquet", x, identity="model-a", model="a")
    other = write_embeddings(tmp_path / "b.parquet", x, identity="model-b", model="b")
    with pytest.raises(EchoicError, match=r"embedded by 'b' \(identity model-b\).*'a'"):
        build_index([mine, other], tmp_path / "idx0", progress=False)
    build_index([mine], tmp_path / "idx", progress=False)
    with pytest.raises(EchoicError, match="An index holds one model's vectors"):
        add_to_index(tmp_path / "idx", [other], progress=False)
    assert len(SearchIndex.open(tmp_path / "idx")) == 40  # unchanged


def test_bad_inputs_say_what_was_expected(tmp_path):
    x, _ = clustered(40, 8, 2)
    emb = write_embeddings(tmp_path / "a.parquet", x)
    (tmp_path / "not.parquet").write_bytes(b"PAR1 nope")
    with pytest.raises(EchoicError, match="not a readable Parquet file"):
        build_index([tmp_path / "not.parquet"], tmp_path / "i", progress=False)
    with pytest.raises(EchoicError, match=r"needs timestamp embeddings.*--timestamps"):
        build_index([emb], tmp_path / "i", level="timestamp", progress=False)
    with pytest.raises(EchoicError, match="expected an index folder"):
        SearchIndex.open(tmp_path / "nothing")
    build_index([emb], tmp_path / "idx", progress=False)
    with pytest.raises(EchoicError, match=r"already holds an index.*index add"):
        build_index([emb], tmp_path / "idx", progress=False)
    build_index([emb], tmp_path / "idx", kind="hnsw", overwrite=True, progress=False)
    with pytest.raises(EchoicError, match=r"row id 40 is not in the index; expected 0\.\.39"):
        SearchIndex.open(tmp_path / "idx").vector(40)
    with pytest.raises(EchoicError, match="nprobe do"):
        resolve_params("hnsw", 8, 40, {"nprobe": 4})
    meta = json.loads((tmp_path / "idx" / "index.json").read_text())
    meta["count"] = 41  # as if an add was interrupted before index.json
    (tmp_path / "idx" / "index.json").write_text(json.dumps(meta))
    with pytest.raises(EchoicError, match=r"disagree on the row count.*Rebuild"):
        SearchIndex.open(tmp_path / "idx")


def test_windows_cover_the_file():
    times = (np.arange(40) + 0.5) * 50.0  # 2 s of 50-ms frames
    frames = np.repeat(np.arange(40, dtype=np.float32)[:, None], 3, 1)
    vectors, starts, lengths = windows(times, frames, 2.0, window_s=0.5, hop_s=0.25)
    np.testing.assert_allclose(starts, [0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5])
    np.testing.assert_allclose(lengths, 0.5)
    np.testing.assert_allclose(vectors[0], 4.5)  # mean of frames 0..9
    np.testing.assert_allclose(vectors[-1], 34.5)  # frames 30..39
    short, s0, l0 = windows(times[:4], frames[:4], 0.2, window_s=0.5, hop_s=0.25)
    assert short.shape == (1, 3) and s0.tolist() == [0.0] and l0.tolist() == [0.2]


def test_ivfpq_rescores_candidates_exactly_with_l2(tmp_path):
    x, _ = clustered(600, 16, 12)
    emb = write_embeddings(tmp_path / "emb.parquet", x)
    build_index([emb], tmp_path / "idx", kind="ivfpq", metric="l2", progress=False)
    index = SearchIndex.open(tmp_path / "idx")
    assert index.meta.params["rerank"] == 10
    scores, ids = index.search(x[:20], 3)
    assert (ids[:, 0] == np.arange(20)).all()  # exact re-scoring: each vector is at distance 0
    np.testing.assert_allclose(scores[:, 0], 0.0, atol=1e-5)
    assert np.all(np.diff(scores, axis=1) >= 0)  # squared L2, nearest first
