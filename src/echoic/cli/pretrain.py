"""`echoic pretrain --config configs/pretrain/<method>_<size>.yaml [--section.key VALUE ...]`.

Every option that is not one of the flags below is a dotted override of the recipe, e.g.
``--trainer.max_steps 100 --optim.lr=1e-4 --data.train '[shared:gcompris_voices/audio]'``
(values are parsed as YAML).
"""

from __future__ import annotations

import argparse

USAGE = (
    "echoic pretrain --config RECIPE.yaml [--resume auto|CKPT] [--export-from CKPT] "
    "[--print-config] [--section.key VALUE ...]"
)


def _own_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="echoic pretrain",
        usage=USAGE,
        allow_abbrev=False,
        description="Self-supervised pretraining of an echoic encoder with a registered objective "
        "(mae, eat, ssast). Any other --section.key VALUE overrides the recipe.",
    )
    p.add_argument("--config", help="YAML recipe, e.g. configs/pretrain/eat_base.yaml")
    p.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        default=None,
        help="resume from a .ckpt, or 'auto' (default when given bare): output_dir/checkpoints/last.ckpt",
    )
    p.add_argument(
        "--export-from",
        metavar="CKPT",
        help="do not train: export CKPT to an echoic model directory (export_dir or output_dir/model)",
    )
    p.add_argument(
        "--print-config", action="store_true", help="print the merged recipe as YAML and exit"
    )
    return p


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    # The verb's own arguments (flags and free-form dotted overrides) are parsed in `run`:
    # prefix_chars="+" makes argparse hand every token over untouched.
    p = subparsers.add_parser(
        "pretrain",
        help="self-supervised pretraining (mae, eat, ssast) on Lightning",
        prefix_chars="+",
        add_help=False,
    )
    p.add_argument("tokens", nargs="*", help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from echoic.train.config import dump_config, load_config

    parser = _own_parser()
    known, overrides = parser.parse_known_args(args.tokens)
    if known.config is None and not known.export_from:
        parser.error("--config RECIPE.yaml is required (see configs/pretrain/)")
    config = load_config(known.config, overrides)
    if known.print_config:
        print(dump_config(config), end="")
        return 0
    if known.export_from:
        from echoic.train.export import export_checkpoint

        out = export_checkpoint(
            known.export_from, config.export_dir or Path(config.output_dir) / "model"
        )
        print(f"exported {known.export_from} → {out}")
        return 0

    if config.stages:  # an iteration recipe: stages in output_dir/<stage>, resumable
        from echoic.train.stages import run_stages

        staged = run_stages(config, resume=known.resume)
        for name, folder in staged.stage_dirs.items():
            print(f"stage {name}: {folder}")
        if staged.finished and staged.model_dir is not None:
            print(f"model: {staged.model_dir} (load with echoic.load)")
        return 0

    from echoic.train.run import pretrain

    result = pretrain(config, resume=known.resume)
    if result.trainer.is_global_zero:
        print(f"data: {len(result.module.clips or [])} clips, hash {result.data_hash}")
        if result.skipped_files:
            print(
                f"skipped {len(result.skipped_files)} unreadable files, e.g. {result.skipped_files[0]}"
            )
        print(f"checkpoint: {result.last_checkpoint}")
        if result.export_dir is not None:
            print(f"model: {result.export_dir} (load with echoic.load)")
    return 0
