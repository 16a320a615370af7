"""Search index kinds side by side: flat (exact) vs IVF vs IVF-PQ vs HNSW at 10k, 100k and 1M vectors.

For each collection size and index kind, in one run: build time (training + adding), memory (the
serialised index, and the resident-memory growth of the build), single-query latency (p50 / p99
over held-out queries, one query per call, one FAISS thread) and recall@10 against exact search.
Builds use ``--build-threads`` FAISS threads (default 1). Every index is made by echoic's own code (``echoic.search.kinds``: the parameters ``echoic index
build`` chooses), cosine metric; rows marked ``(same)`` query the index above them with another
query-time setting (``echoic search --nprobe`` / ``--rerank`` / ``--ef-search``). IVF-PQ
re-scores its ``10 · rerank`` best candidates exactly, as ``echoic search`` does from the
memory-mapped ``vectors.npy`` (here the vectors are in memory; its index MB is the PQ index alone).

The vectors:
- 10k: real scene embeddings, 10,000 clips drawn at random (seeded) from a Parquet file of
  ``echoic embed`` (every clip of the nine real tasks: 18,446);
- 100k: real timestamp-window embeddings (0.5-s windows every 0.25 s, as ``echoic index build
  --timestamps --window-s 0.5 --hop-s 0.25``) of the same file (written with ``--timestamps``),
  100,000 windows drawn at random;
- 1M: synthetic, a seeded mixture of 4,096 Gaussian clusters in the same dimension.
Queries (``--queries``, default 200) are held out of each collection (real: other rows of the same
draw; synthetic: fresh draws from the mixture). Recall@10 is tie-aware: a result counts when its
exact similarity (a NumPy matrix product) reaches the exact 10th-best, because real collections
hold many identical vectors (windows of digital silence) whose order among themselves is arbitrary.

Run::

    .venv/bin/echoic embed tasks/*/16000 --model logmel_stats --timestamps \\
        --out results/collection/logmel_ts.parquet
    .venv/bin/python benchmarks/bench_search.py --parquet results/collection/logmel_ts.parquet
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import time
from pathlib import Path

import numpy as np

from echoic.search import kinds
from echoic.search.rows import Rows, iter_rows, read_source


def cpu_description() -> str:
    text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    name = re.search(r"^Model name:\s*(.+)$", text, re.M)
    cpus = re.search(r"^CPU\(s\):\s*(\d+)", text, re.M)
    flags = set((re.search(r"^Flags:\s*(.+)$", text, re.M) or ["", ""])[1].split())
    shown = ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in ("avx2", "avx512f"))
    return (
        f"CPU: {name.group(1) if name else '?'}, {cpus.group(1) if cpus else '?'} CPUs; {shown}; "
        f"load average {os.getloadavg()[0]:.2f} at start"
    )


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def real_vectors(parquet: Path, level: str, n: int, seed: int = 0) -> np.ndarray:
    """``n`` vectors drawn at random (seeded, without replacement) from every row of ``parquet``."""
    source = read_source(parquet)
    parts = [rows for _, rows in iter_rows(source, level, window_s=0.5, hop_s=0.25)]
    x = Rows.concat(parts, source.dims).vectors
    if len(x) < n:
        raise SystemExit(f"{parquet}: {len(x)} {level} vectors, need {n}")
    return x[np.random.default_rng(seed).permutation(len(x))[:n]]


def exact_top10(base: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Per query, the 10th-highest exact inner product (vectors are unit length): a result
    is a true top-10 hit when its similarity reaches it (so tied vectors count alike)."""
    out = []
    for lo in range(0, len(queries), 16):
        sims = queries[lo : lo + 16] @ base.T
        out.append(-np.partition(-sims, 9, axis=1)[:, 9])
    return np.concatenate(out)


def recall_at_10(
    base: np.ndarray, queries: np.ndarray, ids: np.ndarray, tenth: np.ndarray
) -> float:
    """Tie-aware recall@10 against exact search: the share of the 10 results whose exact
    similarity reaches the exact 10th-best (real collections hold many identical vectors, e.g.
    windows of digital silence, whose order among themselves is arbitrary)."""
    found = np.einsum("qd,qkd->qk", queries, base[np.maximum(ids, 0)])
    hits = (found >= tenth[:, None] - 1e-5) & (ids >= 0)
    return float(hits.sum(1).clip(max=10).mean() / 10)


def synthetic(n: int, dims: int, seed: int, clusters: int = 4096) -> np.ndarray:
    rng = np.random.default_rng(1234)  # the same mixture for the collection and its queries
    centres = rng.standard_normal((clusters, dims)).astype(np.float32)
    scales = rng.uniform(0.2, 0.6, clusters).astype(np.float32)
    rng = np.random.default_rng(seed)
    out = np.empty((n, dims), np.float32)
    for lo in range(0, n, 100_000):
        labels = rng.integers(0, clusters, min(100_000, n - lo))
        noise = rng.standard_normal((len(labels), dims)).astype(np.float32)
        out[lo : lo + len(labels)] = centres[labels] + scales[labels, None] * noise
    return out


def search(
    index: object, kind: str, params: dict, base: np.ndarray, query: np.ndarray
) -> np.ndarray:
    """``(1, 10)`` ids as ``SearchIndex.search`` finds them (ivfpq: re-scored candidates)."""
    fetch = kinds.candidates(kind, params, 10)
    _, ids = index.search(query, fetch)  # type: ignore[attr-defined]
    if fetch > 10:
        ids = kinds.rerank(query, ids, base, "cosine", 10)[1]
    return ids


def latency_recall(
    index: object, kind: str, params: dict, base: np.ndarray, queries: np.ndarray, tenth: np.ndarray
) -> tuple[float, float, float]:
    """p50 and p99 of one-query searches (ms) and the recall@10 of their results."""
    search(index, kind, params, base, queries[:1])  # warm-up
    latencies = []
    ids = np.zeros((len(queries), 10), np.int64)
    for i in range(len(queries)):
        t0 = time.perf_counter()
        found = search(index, kind, params, base, queries[i : i + 1])
        latencies.append(time.perf_counter() - t0)
        ids[i] = found[0]
    p50, p99 = np.percentile(latencies, [50, 99]) * 1000
    return float(p50), float(p99), recall_at_10(base, queries, ids, tenth)


def variants(kind: str, params: dict) -> list[dict]:
    """Query-time settings also measured on the same built index (``echoic search --nprobe`` /
    ``--rerank`` / ``--ef-search``), beside the defaults ``echoic index build`` chooses."""
    if kind == "ivf":
        return [{"nprobe": max(8, params["nlist"] // 8)}]
    if kind == "ivfpq":
        return [{"rerank": 0}]
    if kind == "hnsw":
        return [{"ef_search": 16}, {"ef_search": 128}]
    return []


def measure(
    kind: str, base: np.ndarray, queries: np.ndarray, tenth: np.ndarray, build_threads: int
) -> list[dict]:
    """One row for the default parameters, one per search-time variant (same build)."""
    faiss = kinds.faiss_module()
    faiss.omp_set_num_threads(build_threads)
    params = kinds.resolve_params(kind, base.shape[1], len(base), {})
    before = rss_bytes()
    start = time.perf_counter()
    index = kinds.make_index(kind, "cosine", base.shape[1], params)
    kinds.train(index, base)
    for lo in range(0, len(base), 65_536):
        index.add(base[lo : lo + 65_536])
    build = {
        "build_s": time.perf_counter() - start,
        "rss": rss_bytes() - before,
        "bytes": len(faiss.serialize_index(index)),
    }
    faiss.omp_set_num_threads(1)  # latency of one query on one thread
    rows = []
    for k, variant in enumerate([{}, *variants(kind, params)]):
        setting = {**params, **variant}
        kinds.set_search_params(index, kind, setting)
        p50, p99, recall = latency_recall(index, kind, setting, base, queries, tenth)
        rows.append(
            {
                **build,
                "same_build": k > 0,
                "params": setting,
                "p50_ms": p50,
                "p99_ms": p99,
                "recall": recall,
            }
        )
    del index
    return rows


def mb(n: int) -> str:
    return f"{n / 2**20:.1f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--parquet", required=True, help="`echoic embed --timestamps` output (real)")
    p.add_argument("--sizes", default="10000,100000,1000000")
    p.add_argument("--kinds", default="flat,ivf,ivfpq,hnsw")
    p.add_argument("--queries", type=int, default=200)
    p.add_argument(
        "--build-threads",
        type=int,
        default=1,
        help="FAISS threads while building (default 1: on a shared 2-core machine OpenMP's "
        "barriers wait for descheduled threads, and 2 threads trained IVF-PQ 3.4x slower)",
    )
    args = p.parse_args()
    print(cpu_description())
    faiss = kinds.faiss_module()
    print(
        f"faiss {faiss.__version__}; numpy {np.__version__}; metric cosine; k = 10; "
        f"build threads {args.build_threads}, query threads 1; {args.queries} queries"
    )
    source = read_source(args.parquet)
    print(f"real vectors: {args.parquet} ({source.model}, {source.dims}-d, {source.rows} files)")
    header = (
        f"{'vectors':>9} {'source':<22} {'kind':<6} {'build s':>8} {'index MB':>9} "
        f"{'RSS+ MB':>8} {'p50 ms':>7} {'p99 ms':>7} {'recall@10':>9}  params"
    )
    print(header)
    print("-" * len(header))
    for n in (int(s) for s in args.sizes.split(",")):
        q = args.queries
        if n <= 10_000:
            what = "real scene (clips)"
            x = real_vectors(Path(args.parquet), "scene", n + q)
        elif n <= 100_000:
            what = "real 0.5-s windows"
            x = real_vectors(Path(args.parquet), "timestamp", n + q)
        else:
            what = "synthetic mixture"
            x = np.concatenate([synthetic(n, source.dims, seed=1), synthetic(q, source.dims, 2)])
        x = kinds.normalise(x, "cosine")
        base, queries = x[:n], x[n:]
        truth = exact_top10(base, queries)
        for kind in args.kinds.split(","):
            for r in measure(kind, base, queries, truth, args.build_threads):
                params = ", ".join(f"{k}={v}" for k, v in r["params"].items()) or "-"
                built = (
                    f"{'(same)':>8} {'':>9} {'':>8}"
                    if r["same_build"]
                    else f"{r['build_s']:>8.2f} {mb(r['bytes']):>9} {mb(r['rss']):>8}"
                )
                print(
                    f"{n:>9,} {what:<22} {kind:<6} {built} {r['p50_ms']:>7.3f} "
                    f"{r['p99_ms']:>7.3f} {r['recall']:>9.3f}  {params}",
                    flush=True,
                )
        del x, base, queries


if __name__ == "__main__":
    main()
