"""`echoic index build|add|info`: FAISS indexes over `echoic embed` Parquet files (docs/search.md)."""

from __future__ import annotations

import argparse
import json

from echoic.cli.embed import parse_layer


def add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        default=None,
        help="the model (name or directory) that wrote the Parquet files, which embeds audio "
        "queries; default: index build finds it from the Parquet's model label when that is a "
        "registered name, search uses the one index.json records",
    )
    p.add_argument("--layer", type=parse_layer, default=None, help="as given to echoic embed")
    p.add_argument("--chunk-s", type=float, default=None, help="as given to echoic embed")
    p.add_argument("--shifts", type=int, default=None, help="as given to echoic embed")
    p.add_argument(
        "--model-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other option echoic embed was given (e.g. precision=bf16; repeatable)",
    )


def model_options(args: argparse.Namespace) -> dict[str, object]:
    """The embedding options of ``--layer``, ``--chunk-s``, ``--shifts`` and ``--model-option``
    (values read as JSON where they parse, else as text)."""
    from echoic.errors import EchoicError

    options: dict[str, object] = {
        "layer": args.layer,
        "chunk_s": args.chunk_s,
        "shifts": args.shifts,
    }
    for item in args.model_option:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise EchoicError(
                f"--model-option expects KEY=VALUE (e.g. precision=bf16); found {item!r}"
            )
        try:
            options[key] = json.loads(text)
        except json.JSONDecodeError:
            options[key] = text
    return {k: v for k, v in options.items() if v is not None}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "index",
        help="build or extend a FAISS search index over `echoic embed` Parquet files",
        description="Index embeddings for `echoic search`: one vector per file (scene) or per "
        "time window (--timestamps). See docs/search.md.",
    )
    sub = p.add_subparsers(dest="index_command", metavar="COMMAND", required=True)
    b = sub.add_parser("build", help="build an index folder from Parquet files of one model")
    b.add_argument("parquet", nargs="+", help="Parquet file(s) written by `echoic embed`")
    b.add_argument("--out", required=True, help="index folder to write")
    b.add_argument(
        "--kind",
        choices=("flat", "ivf", "ivfpq", "hnsw"),
        default="flat",
        help="flat: exact; ivf, ivfpq: k-means cells (ivfpq: compressed); hnsw: graph "
        "(docs/search.md; default flat)",
    )
    b.add_argument(
        "--metric",
        choices=("cosine", "l2"),
        default="cosine",
        help="cosine similarity (default) or squared L2 distance",
    )
    b.add_argument(
        "--timestamps",
        action="store_true",
        help="one vector per time window (needs Parquet from `echoic embed --timestamps`)",
    )
    b.add_argument("--window-s", type=float, default=1.0, help="--timestamps: window length")
    b.add_argument("--hop-s", type=float, default=0.5, help="--timestamps: window hop")
    b.add_argument("--nlist", type=int, default=None, help="ivf/ivfpq: k-means cells")
    b.add_argument("--nprobe", type=int, default=None, help="ivf/ivfpq: cells searched per query")
    b.add_argument("--pq-m", type=int, default=None, help="ivfpq: sub-quantisers (divides dims)")
    b.add_argument("--nbits", type=int, default=None, help="ivfpq: bits per code (≤ 8)")
    b.add_argument(
        "--rerank",
        type=int,
        default=None,
        help="ivfpq: re-score the k × N best candidates exactly from vectors.npy (10; 0: off)",
    )
    b.add_argument("--hnsw-m", type=int, default=None, help="hnsw: links per node (default 32)")
    b.add_argument("--ef-construction", type=int, default=None, help="hnsw: build breadth (80)")
    b.add_argument("--ef-search", type=int, default=None, help="hnsw: query breadth (64)")
    add_model_options(b)
    b.add_argument("--overwrite", action="store_true", help="replace an index already in --out")
    b.add_argument("--threads", type=int, default=None, help="FAISS threads (default: all)")
    b.add_argument("--quiet", action="store_true", help="no progress bars")
    b.set_defaults(func=run_build)
    a = sub.add_parser("add", help="append Parquet rows to an index (rows already in it skipped)")
    a.add_argument("index", help="index folder")
    a.add_argument("parquet", nargs="+", help="Parquet file(s) written by `echoic embed`")
    a.add_argument("--threads", type=int, default=None, help="FAISS threads (default: all)")
    a.add_argument("--quiet", action="store_true", help="no progress bars")
    a.set_defaults(func=run_add)
    i = sub.add_parser("info", help="print an index's index.json")
    i.add_argument("index", help="index folder")
    i.set_defaults(func=run_info)


def _threads(n: int | None) -> None:
    if n:
        from echoic.search.kinds import faiss_module

        faiss_module().omp_set_num_threads(n)


def run_build(args: argparse.Namespace) -> int:
    from echoic.errors import EchoicError
    from echoic.search.index import build_index
    from echoic.search.model import describe_model
    from echoic.search.rows import read_source

    _threads(args.threads)
    options = model_options(args)
    if args.model is None and options:
        raise EchoicError("--layer / --chunk-s / --shifts / --model-option need --model")
    model, how = describe_model(read_source(args.parquet[0]), args.model, options)
    params = {
        "nlist": args.nlist,
        "nprobe": args.nprobe,
        "m": args.pq_m,
        "nbits": args.nbits,
        "rerank": args.rerank,
        "M": args.hnsw_m,
        "ef_construction": args.ef_construction,
        "ef_search": args.ef_search,
    }
    report = build_index(
        args.parquet,
        args.out,
        model=model,
        kind=args.kind,
        metric=args.metric,
        level="timestamp" if args.timestamps else "scene",
        window_s=args.window_s,
        hop_s=args.hop_s,
        params={k: v for k, v in params.items() if v is not None},
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    print(report.summary())
    print(how)
    return 0


def run_add(args: argparse.Namespace) -> int:
    from echoic.search.index import add_to_index

    _threads(args.threads)
    print(add_to_index(args.index, args.parquet, progress=not args.quiet).summary())
    return 0


def run_info(args: argparse.Namespace) -> int:
    from echoic.config import to_dict
    from echoic.search.layout import read_meta

    meta = to_dict(read_meta(args.index))
    if meta["model"].get("config"):
        meta["model"]["config"] = "(in index.json)"
    print(json.dumps(meta, indent=1))
    return 0
