"""`echoic corpus build|check|select|sources`: an honest pretraining corpus and its leakage check."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_SOURCES = "gcompris_voices,arabic_speech_commands_train,soundfont_train,music21"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("corpus", help="build or check a pretraining corpus")
    verbs = p.add_subparsers(dest="corpus_verb", metavar="SUBVERB")

    b = verbs.add_parser("build", help="list / render the sources into DIR (resumable)")
    b.add_argument("--out", required=True, help="corpus folder (manifest.csv, audio/)")
    b.add_argument("--sources", default=DEFAULT_SOURCES, help="comma-separated source names")
    b.add_argument("--tasks-dir", default=None, help="task folder (default: OUT/tasks)")
    b.add_argument("--data", default=None, help="shared data folder (default: ../shared/data)")
    b.add_argument("--max-hours", type=float, default=None, help="hours cap per source")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument(
        "--max-package-mb",
        type=float,
        default=300.0,
        help="Debian packages bigger than this are skipped (opt in to big ones by raising it)",
    )
    b.add_argument("--no-check", action="store_true", help="skip the leakage check")
    b.add_argument("--quiet", action="store_true", help="no progress bars")
    b.set_defaults(func=run_build)

    c = verbs.add_parser("check", help="compare a corpus with every task's held-out audio")
    c.add_argument("corpus", help="corpus folder or manifest.csv")
    c.add_argument("--tasks", nargs="+", required=True, help="task folders or folders of them")
    c.add_argument("--data", default=None, help="shared data folder (default: ../shared/data)")
    c.set_defaults(func=run_check)

    sel = verbs.add_parser("select", help="write a sub-manifest of DIR by category / source")
    sel.add_argument("corpus", help="corpus folder (manifest.csv, categories.csv)")
    sel.add_argument("--out", required=True, help="the manifest CSV to write")
    sel.add_argument("--categories", default="", help="comma-separated, e.g. sfx,music")
    sel.add_argument("--sources", default="", help="comma-separated source names")
    sel.set_defaults(func=run_select)

    s = verbs.add_parser("sources", help="list the registered sources and their licences")
    s.set_defaults(func=run_sources)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _check(corpus: Path, tasks: list[Path], data: str | None) -> int:
    from echoic.corpus import check_corpus, held_out_hashes, read_manifest
    from echoic.tasks.paths import resolve_data_dir

    rows = read_manifest(corpus)
    heldout = corpus / "heldout.csv" if corpus.is_dir() else corpus.with_name("heldout.csv")
    if heldout.is_file():  # the held-out caption set must be free of task audio too
        rows += read_manifest(heldout)
    held = held_out_hashes(tasks, resolve_data_dir(data))
    leaks = check_corpus(rows, held)
    print(
        f"leakage check: {len(rows)} corpus files vs {held.files} held-out files of "
        f"{len(held.tasks)} tasks ({', '.join(held.tasks)}): {len(leaks)} leaks"
    )
    for leak in leaks[:20]:
        print(f"  LEAK {leak.corpus_file} = {leak.held_out} (by {leak.how})")
    return 1 if leaks else 0


def run_build(args: argparse.Namespace) -> int:
    from echoic.corpus import CorpusContext, build_corpus
    from echoic.tasks.paths import resolve_data_dir

    out = Path(args.out)
    tasks_dir = Path(args.tasks_dir) if args.tasks_dir else out / "tasks"
    ctx = CorpusContext(
        resolve_data_dir(args.data), tasks_dir, args.max_hours, args.seed, args.max_package_mb
    )
    names = [n.strip() for n in args.sources.split(",") if n.strip()]

    def report(name: str, stats: dict) -> None:
        print(f"{name:30s} {stats['files']:6d} files {stats['hours']:7.2f} h  {stats['licence']}")
        if "category_hours" in stats:
            hours = ", ".join(f"{k} {h:.2f} h" for k, h in stats["category_hours"].items())
            print(f"{'':30s} {hours}; {stats.get('duplicates', 0)} duplicates dropped")
        if "captions" in stats:
            kinds = ", ".join(f"{k} {n}" for k, n in sorted(stats["captions"].items()))
            print(
                f"{'':30s} captions: {kinds}; {len(stats['caption_langs'])} languages; "
                f"{stats['heldout_files']} files held out (heldout.csv)"
            )

    summary = build_corpus(out, names, ctx, progress=not args.quiet, report=report)
    print(
        f"{'total':30s} {summary.total_files:6d} files {summary.total_hours:7.2f} h  "
        f"content hash {summary.content_hash}; {len(summary.failures)} items skipped"
    )
    for failure in summary.failures[:10]:
        print(f"  skipped: {failure}")
    print(f"manifest: {out / 'manifest.csv'} (train with --data.train '[{out}/manifest.csv]')")
    if args.no_check:
        return 0
    return _check(out, [tasks_dir], args.data) if tasks_dir.is_dir() else 0


def run_check(args: argparse.Namespace) -> int:
    return _check(Path(args.corpus), [Path(t) for t in args.tasks], args.data)


def run_select(args: argparse.Namespace) -> int:
    from echoic.corpus.select import select_rows, write_selection

    def names(text: str) -> list[str]:
        return [n.strip() for n in text.split(",") if n.strip()]

    corpus = Path(args.corpus)
    rows = select_rows(corpus, names(args.categories), names(args.sources))
    seconds = sum(float(r.get("duration_s") or 0.0) for r in rows)
    out = write_selection(rows, corpus, Path(args.out))
    print(f"{len(rows)} files, {seconds / 3600:.2f} h -> {out}")
    return 0


def run_sources(args: argparse.Namespace) -> int:
    from echoic.corpus import SOURCES

    for name, cls in SOURCES.items():
        print(f"{name:30s} {cls.description}\n{'':30s} licence: {cls.licence}")
    return 0


if __name__ == "__main__":
    sys.exit(0)
