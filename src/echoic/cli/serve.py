"""`echoic serve IDX [--host 127.0.0.1 --port 8765]`: the web explorer of a search index.

A page with a 2-D map of the collection, nearest neighbours with audio and thumbnails, search by
uploaded file or row id (docs/search.md, "The web explorer"). Needs ``pip install 'echoic[serve]'``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from echoic.cli.index import add_model_options, model_options


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="web explorer of an index: map, neighbours with audio, search by upload or id",
        description="Serve a page for exploring an index built by `echoic index build`: a 2-D "
        "map of the collection, a click gives a clip's nearest neighbours (audio + thumbnails), "
        "a dropped file is embedded with the index's model and searched. Binds 127.0.0.1 "
        "unless --host says otherwise; serves only the indexed audio files; read-only.",
    )
    p.add_argument("index", help="index folder written by `echoic index build`")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; any other warns)",
    )
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any free one)")
    p.add_argument("-k", type=int, default=10, help="neighbours shown per query (default 10)")
    p.add_argument(
        "--max-upload-mb", type=float, default=20.0, help="largest upload, MiB (default 20)"
    )
    p.add_argument(
        "--max-upload-s",
        type=float,
        default=60.0,
        help="longest uploaded audio decoded, seconds (default 60)",
    )
    p.add_argument(
        "--max-points",
        type=int,
        default=50_000,
        help="rows drawn on the map (a seeded sample of larger indexes; default 50,000)",
    )
    p.add_argument(
        "--allow-root",
        action="append",
        default=[],
        metavar="DIR",
        help="folder whose files may be served (repeatable; default: the deepest folder "
        "holding every indexed file). Indexed paths that resolve elsewhere (symlinks) get 404",
    )
    p.add_argument(
        "--allowed-host",
        action="append",
        default=None,
        metavar="NAME",
        help="Host header to accept (repeatable; default: loopback names when bound to "
        "127.0.0.1, any when bound elsewhere)",
    )
    add_model_options(p)
    p.add_argument("--threads", type=int, default=None, help="torch and FAISS threads")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from echoic.errors import EchoicError
    from echoic.serve.decode import DecodeLimits
    from echoic.serve.explorer import ExplorerConfig
    from echoic.serve.server import require_server_stack, run_server

    require_server_stack()
    if not 1 <= args.k <= 100:
        raise EchoicError(f"-k must be from 1 to 100; found {args.k}")
    if args.max_upload_mb <= 0 or args.max_upload_s <= 0 or args.max_points < 1:
        raise EchoicError("--max-upload-mb, --max-upload-s and --max-points must be > 0")
    options = model_options(args)
    if args.model is None and options:
        raise EchoicError("--layer / --chunk-s / --shifts / --model-option need --model")
    if args.threads:
        import torch

        from echoic.search.kinds import faiss_module

        torch.set_num_threads(args.threads)
        faiss_module().omp_set_num_threads(args.threads)
    config = ExplorerConfig(
        index=Path(args.index),
        host=args.host,
        port=args.port,
        k=args.k,
        max_points=args.max_points,
        limits=DecodeLimits(
            max_bytes=int(args.max_upload_mb * 2**20), max_duration_s=args.max_upload_s
        ),
        model=args.model,
        model_options=options,
        roots=[Path(r) for r in args.allow_root],
        allowed_hosts=args.allowed_host,
    )
    run_server(config)
    return 0
