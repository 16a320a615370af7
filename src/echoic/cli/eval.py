"""`echoic eval`: HEAR-protocol evaluation of models on HEAR-format tasks (see docs/evaluation.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="evaluate models on HEAR-format tasks (cached embeddings, probes, report)",
        description="Embed every task with every model (cached), train probes, and write one JSON "
        "per (model, task), results.csv, a printed table and report.html into --out.",
    )
    p.add_argument(
        "--model",
        action="append",
        default=[],
        help="a model name (any of `echoic models`) or model directory (repeatable); default: "
        "echoic-default",
    )
    p.add_argument(
        "--cached-model",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="a model known only by its embeddings: DIR is <cache>/<identity>/ written by an "
        "earlier echoic eval (repeatable; all in one cache folder, used as --cache)",
    )
    p.add_argument("--hear-module", help="a HEAR 2021 API module to evaluate (pkg.module)")
    p.add_argument("--hear-weights", help="weights file passed to the HEAR module's load_model")
    p.add_argument("--tasks", nargs="+", default=[], help="task dirs or folders of task dirs")
    p.add_argument(
        "--protocol",
        choices=(
            "hear",
            "hear-fast",
            "xares",
            "linear",
            "knn",
            "retrieval",
            "zeroshot",
            "textretrieval",
        ),
        default="hear",
        help="zeroshot: class prompts → nearest class, for joint audio–text models (clap, slap); "
        "textretrieval: text↔audio R@1/5/10 and mAP on --captions held-out sets",
    )
    p.add_argument(
        "--captions",
        action="append",
        default=[],
        metavar="CORPUS",
        help="textretrieval: a corpus folder with heldout.csv + captions.csv (repeatable)",
    )
    p.add_argument(
        "--fusion",
        action="store_true",
        help="textretrieval: rank with a collap export's text-conditioned chunk fusion "
        "(collap_fusion.safetensors) instead of its text-independent embed_audio vector",
    )
    p.add_argument(
        "--caption-langs",
        default="",
        help="textretrieval: keep captions in these languages, comma-separated (en keeps en-GB)",
    )
    p.add_argument(
        "--prompt",
        default="the sound of a {label}",
        help="zeroshot: the class prompt; {label} is the cleaned label",
    )
    p.add_argument(
        "--seeds", type=int, default=1, help="probe seeds (mean ± std over seeds, folds)"
    )
    p.add_argument(
        "--min-steps",
        type=int,
        default=None,
        help="hear-fast: shrink the batch (not below 32 rows) to give at least this many steps "
        "per epoch (0: hear's 1024 rows)",
    )
    p.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="probe seeds are FIRST_SEED .. FIRST_SEED+SEEDS-1 (a re-seeded rerun of a protocol)",
    )
    p.add_argument("--out", default="results", help="output folder")
    p.add_argument("--cache", default=None, help="embedding cache folder (default: OUT/cache)")
    p.add_argument("--grid-points", type=int, default=8, help="hear: grid points of 16 (default 8)")
    p.add_argument("--max-epochs", type=int, default=None, help="override the protocol's epochs")
    p.add_argument("--patience", type=int, default=None, help="override early-stopping patience")
    p.add_argument("--check-every", type=int, default=None, help="override validation interval")
    p.add_argument("--batch-size", type=int, default=None, help="override the probe batch size")
    p.add_argument(
        "--rungs",
        default=None,
        help="hear-fast: validation checks after which half the grid points stop (e.g. 8,16,32)",
    )
    p.add_argument(
        "--hidden-dim",
        type=int,
        default=None,
        help="MLP probes' hidden width (default: hear 1024, hear-fast 256)",
    )
    p.add_argument(
        "--order",
        choices=("fixed", "epoch"),
        default=None,
        help="training order: fixed (hear-eval-kit, default for hear) or reshuffled every epoch",
    )
    p.add_argument(
        "--backend",
        choices=("stacked", "sequential"),
        default="stacked",
        help="stacked: the probes of a unit trained together (default); sequential: one by one",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads for probe training (default: 1 for linear/knn, torch's for hear)",
    )
    p.add_argument(
        "--device",
        default="auto",
        help="where MLP probes train: auto (a CUDA GPU when torch sees one; default), cpu, cuda",
    )
    p.add_argument(
        "--jobs",
        default="auto",
        help="train MLP probe units (grid points, folds) in N processes of --threads threads "
        "(default 1 each); CPU only. auto (default): one per usable core for hear, hear-fast "
        "and linear on a CPU, else 1. Finished units are kept, so a stopped run resumes",
    )
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16", "int8", "auto"),
        default="fp32",
        help="encoder arithmetic when embedding echoic models (other models ignore it; the "
        "precision is part of the embedding cache key)",
    )
    p.add_argument(
        "--embed-device",
        default="cpu",
        help="where models embed the task audio: cpu (default), cuda, cuda:N or auto; not part "
        "of the embedding cache key (--device is where probes train)",
    )
    p.add_argument("--no-report", action="store_true", help="skip report.html")
    p.add_argument(
        "--no-resume",
        action="store_true",
        help="train again even where OUT holds a result of the same model, task and config",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _with_options(model: object, precision: str, device: str) -> object:
    """A model name/directory as a factory of its model on ``device`` (echoic models also at
    ``precision``; other models ignore it)."""
    if not isinstance(model, str):
        return model
    from echoic.cards import ECHOIC_KINDS, find_card

    options: dict[str, object] = {} if device == "cpu" else {"device": device}
    if find_card(model).kind in ECHOIC_KINDS and precision != "fp32":
        options["precision"] = precision
    if not options:
        return model
    from echoic.zoo.registry import resolve_model

    return lambda: resolve_model(model, **options)


def _text_retrieval(args: argparse.Namespace) -> int:
    from echoic.evaluate.runner import write_summary
    from echoic.evaluate.textretrieval import evaluate_text_retrieval

    if not args.captions or not args.model:
        print(
            "echoic eval: error: --protocol textretrieval needs --captions CORPUS (a corpus "
            "folder with heldout.csv + captions.csv) and --model DIR (a clap / slap export)",
            file=sys.stderr,
        )
        return 2
    langs = [lang.strip() for lang in args.caption_langs.split(",") if lang.strip()]
    out = Path(args.out)
    evaluate_text_retrieval(
        args.model, args.captions, out, langs, resume=not args.no_resume, fusion=args.fusion
    )
    write_summary(out, not args.no_report)
    return 0


def run(args: argparse.Namespace) -> int:
    from echoic.evaluate import EvalConfig, HearModuleModel, ProbeConfig, evaluate
    from echoic.evaluate.cache import cached_model

    if args.protocol == "textretrieval":
        return _text_retrieval(args)
    if not args.tasks:
        print("echoic eval: error: the following arguments are required: --tasks", file=sys.stderr)
        return 2

    models: list = list(args.model)
    cached = [cached_model(spec) for spec in args.cached_model]
    roots = {c.cache_root.resolve() for c in cached}
    if args.cache:
        roots.add(Path(args.cache).resolve())
    if len(roots) > 1:
        print(
            "echoic eval: error: cached models and --cache must share one cache folder; found "
            + ", ".join(sorted(str(r) for r in roots)),
            file=sys.stderr,
        )
        return 2
    if cached and not args.cache:
        args.cache = str(cached[0].cache_root)
    models.extend(cached)
    if args.hear_module:
        models.append(
            lambda: HearModuleModel(args.hear_module, args.hear_weights, device=args.embed_device)
        )
    elif args.hear_weights:
        print("echoic eval: error: --hear-weights needs --hear-module", file=sys.stderr)
        return 2
    if not models:
        from echoic.checkpoint import DEFAULT_MODEL

        models = [DEFAULT_MODEL]
    if args.precision != "fp32" or args.embed_device != "cpu":
        models = [_with_options(m, args.precision, args.embed_device) for m in models]
    probe = ProbeConfig(
        protocol=args.protocol,
        seeds=args.seeds,
        first_seed=args.first_seed,
        grid_points=args.grid_points,
        hidden_dim=args.hidden_dim,
        max_epochs=args.max_epochs,
        patience=args.patience,
        check_every=args.check_every,
        batch_size=args.batch_size,
        order=args.order,
        backend=args.backend,
    )
    if args.min_steps is not None:
        probe.fast_min_steps = args.min_steps
    if args.rungs:
        probe.fast_rungs = tuple(int(r) for r in args.rungs.split(","))
    config = EvalConfig(
        out=Path(args.out),
        cache=Path(args.cache) if args.cache else None,
        probe=probe,
        progress=not args.quiet,
        report=not args.no_report,
        resume=not args.no_resume,
        threads=args.threads,
        device=args.device,
        jobs=resolve_jobs(args.jobs, args.protocol),
        prompt=args.prompt,
    )
    evaluate(models, args.tasks, config)
    return 0


def resolve_jobs(value: str | int, protocol: str) -> int:
    """``--jobs``: a number, or ``auto`` (:func:`echoic.evaluate.units.auto_jobs`: one process per
    usable core for hear, hear-fast and linear on a CPU, else 1)."""
    if str(value) != "auto":
        try:
            return int(value)
        except ValueError:
            raise SystemExit(
                f"echoic eval: error: --jobs must be a number or auto; found {value!r}"
            ) from None
    from echoic.evaluate.units import auto_jobs

    return auto_jobs(protocol)
