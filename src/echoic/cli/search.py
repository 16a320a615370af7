"""`echoic search IDX QUERY... [-k 10]`: nearest neighbours of audio files, rows or time ranges.

A QUERY is an audio file (embedded with the index's model), ``id:N`` / ``N`` (a row of the index),
``FILE@START-END`` (seconds of a file) or a Parquet file of ``echoic embed`` (each row a query).
See docs/search.md.
"""

from __future__ import annotations

import argparse
import sys
import time

from echoic.cli.index import add_model_options, model_options


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "search",
        help="search an index (echoic index build) by audio file, row id or time range",
        description="Print the k nearest rows of every query (path, time, score) and optionally "
        "write them to JSON or CSV. Queries that cannot be read are reported and skipped.",
    )
    p.add_argument("index", help="index folder written by `echoic index build`")
    p.add_argument(
        "queries",
        nargs="+",
        metavar="QUERY",
        help="audio file | id:N | FILE@START-END | EMB.parquet",
    )
    p.add_argument("-k", type=int, default=10, help="neighbours per query (default 10)")
    p.add_argument("--out", default=None, help="also write the answers to this .json or .csv file")
    add_model_options(p)
    p.add_argument("--nprobe", type=int, default=None, help="ivf/ivfpq: cells searched per query")
    p.add_argument("--ef-search", type=int, default=None, help="hnsw: query breadth")
    p.add_argument("--rerank", type=int, default=None, help="ivfpq: candidates re-scored (× k)")
    p.add_argument("--threads", type=int, default=None, help="torch and FAISS threads")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from echoic.errors import EchoicError
    from echoic.search.index import SearchIndex
    from echoic.search.model import query_model
    from echoic.search.query import (
        answer,
        format_answers,
        parse_query,
        query_vectors,
        score_name,
        write_answers,
    )

    if args.k < 1:
        raise EchoicError(f"-k must be ≥ 1; found {args.k}")
    if args.threads:
        import torch

        from echoic.search.kinds import faiss_module

        torch.set_num_threads(args.threads)
        faiss_module().omp_set_num_threads(args.threads)
    start = time.perf_counter()
    index = SearchIndex.open(args.index)
    index.set_search_params(nprobe=args.nprobe, ef_search=args.ef_search, rerank=args.rerank)
    options = model_options(args)
    if args.model is None and options:
        raise EchoicError("--layer / --chunk-s / --shifts / --model-option need --model")
    queries, bad = [], []
    for text in args.queries:
        try:
            queries.append(parse_query(text))
        except EchoicError as err:  # one malformed argument must not lose the others
            bad.append((text, str(err)))
    vectors, errors = query_vectors(
        queries, index, lambda: query_model(index.meta.model, args.model, options)
    )
    errors = bad + errors
    t0 = time.perf_counter()
    answers = answer(index, vectors, args.k)
    search_s = time.perf_counter() - t0
    if not args.quiet:
        print(
            f"index {index.directory}: {len(index)} {index.meta.level} vectors of "
            f"{index.meta.model.label} ({index.meta.kind}, score = {score_name(index.meta.metric)})"
        )
        print(format_answers(answers))
    for query, why in errors:
        print(f"skipped query {query}: {why}", file=sys.stderr)
    if args.out:
        write_answers(args.out, answers, errors, index, args.k)
    if not args.quiet:
        print(
            f"{len(answers)} query(ies) answered, {len(errors)} skipped; search {search_s * 1000:.1f} ms, "
            f"total {time.perf_counter() - start:.2f} s"
            + (f"; written to {args.out}" if args.out else "")
        )
    return 0 if answers or not errors else 1
