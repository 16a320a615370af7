"""The CLI's start-up stays light: building the parser (every verb's ``add_parser``) and reading
the model directory format never import torch; verbs import their heavy modules inside ``run``."""

from __future__ import annotations

import subprocess
import sys


def _torch_imported_after(code: str) -> bool:
    probe = f"import sys\n{code}\nprint('torch' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1] == "True"


def test_building_the_parser_imports_no_torch() -> None:
    code = (
        "from echoic.cli.main import build_parser\n"
        "parser = build_parser()\n"
        "parser.parse_args(['embed', 'x.wav', '--out', 'e.parquet'])\n"
        "parser.parse_args(['info'])"
    )
    assert not _torch_imported_after(code), (
        "a module of echoic.cli imports torch at module level (directly or through echoic."
        "checkpoint); import heavy modules inside the verb's run function, and take constants "
        "such as DEFAULT_MODEL from echoic.model_format"
    )


def test_model_format_reads_a_bundled_config_without_torch() -> None:
    code = (
        "from echoic.model_format import BUNDLED_DIR, BUNDLED_DEFAULT, read_config\n"
        "config = read_config(BUNDLED_DIR / BUNDLED_DEFAULT)\n"
        "assert config.encoder, config"
    )
    assert not _torch_imported_after(code)


def test_listing_models_imports_no_torch() -> None:
    """Every card module (echoic.zoo.cards) and the bundled models' declared sizes are read
    without torch: ``echoic models`` lists every card and builds nothing."""
    code = "from echoic.cli.main import main\nmain(['models', '--json'])"
    assert not _torch_imported_after(code), (
        "listing models imported torch: a card module (src/echoic/zoo/cards/) imports its "
        "implementation (use echoic.cards.lazy('module:attr') as build), or a bundled model's "
        "config.json lacks its 'card' block (re-save it with echoic.save)"
    )
