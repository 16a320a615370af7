"""Every converted spectrogram-transformer family (AST from transformers, SSAST from its
repository's checkpoint, Dasheng) serves the HEAR 2021 API, and runs `echoic eval --protocol
linear` on a real task (random weights: the check is that each runs end to end)."""

from __future__ import annotations

import pytest
import torch
from converted_checks import check_hear, linear_smoke, task_dir
from spectrogram_reference import dasheng_module, make_dasheng, make_hf_ast, perturb, s3prl_modules

from echoic.checkpoint import read_config
from echoic.convert import convert

FAMILIES = ("ast", "ssast", "dasheng")


@pytest.fixture(scope="module")
def converted_family(tmp_path_factory, transformers_module):
    """``converted_family(name)`` → an echoic directory converted from a tiny random reference."""
    done: dict[str, object] = {}

    def get(family: str):
        if family in done:
            return done[family]
        folder = tmp_path_factory.mktemp(f"source-{family}")
        if family == "ast":
            make_hf_ast(transformers_module, 1024).save_pretrained(folder)
            source = folder
        elif family == "ssast":
            torch.manual_seed(0)
            model = s3prl_modules()[0].ASTModel(
                fshape=16, tshape=16, fstride=16, tstride=16, input_tdim=256, model_size="tiny"
            )
            source = folder / "SSAST-Tiny-Patch.pth"
            torch.save(torch.nn.DataParallel(perturb(model)).state_dict(), source)
        else:
            source = folder / "dasheng_tiny.pt"
            model = make_dasheng(dasheng_module())
            torch.save({"model": model.state_dict(), "config": {"num_heads": 4}}, source)
        done[family] = convert(source, tmp_path_factory.mktemp(f"echoic-{family}"))
        return done[family]

    return get


@pytest.mark.parametrize("family", FAMILIES)
def test_hear_api(family, converted_family):
    out = converted_family(family)
    assert read_config(out).encoder == family
    width = 192 if family == "ssast" else 64
    check_hear(out, width, seconds=(0.05, 1.0, 4.2))


@pytest.mark.parametrize("family", FAMILIES)
def test_echoic_eval_linear_on_a_real_task(family, converted_family, shared_data, tmp_path):
    task = task_dir(shared_data, tmp_path / "tasks")
    assert 0.0 <= linear_smoke(converted_family(family), task, tmp_path / "results") <= 1.0
