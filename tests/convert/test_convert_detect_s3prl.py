"""Detection of the s3prl formats (``tera``, ``apc``, ``npc``, ``byol-a``) among the other pickled
formats: each file is read by exactly its own converter, from its names only (no reference
package needed, nothing unpickled), and the s3prl files are read without ``--trust-pickle``."""

from __future__ import annotations

import argparse

import pytest
import torch

from echoic.convert import CONVERTERS, UnsafePickleError
from echoic.convert.s3prl_states import read_states

Z = torch.zeros(1)
BYOL_A = ["features.0.weight", "features.1.running_mean", "features.4.weight", "features.8.weight"]
BYOL_A += ["fc.0.weight", "fc.3.weight"]
CASES = {
    "tera": {
        "Transformer": {"input_representations.spec_transform.weight": Z},
        "SpecHead": {"output.weight": Z},
        "Upstream_Config": {"transformer": {"hidden_size": 768}, "audio": {}, "task": {}},
        "Args": argparse.Namespace(upstream="tera"),
    },
    "apc": {
        "config": {"data": {"audio": {"feat_dim": 80}}, "model": {"paras": {"num_layers": 3}}},
        "model": {"rnn_layers.0.weight_ih_l0": Z, "postnet.weight": Z},
    },
    "npc": {
        "config": {"data": {"audio": {"feat_dim": 80}}, "model": {"paras": {"n_blocks": 4}}},
        "model": {
            "blocks.0.conv.weight": Z,
            "blocks.0.linear.weight": Z,
            "masked_convs.0.conv_mask": Z,
        },
    },
    "byol-a": {k: Z for k in BYOL_A},
    "byol-a-wrapped": {"state_dict": {f"model.online.{k}": Z for k in BYOL_A}, "epoch": 1},
    # other formats' files: none of the s3prl converters may claim them
    "vit-blocks": {"config": {}, "model": {"blocks.0.attn.qkv.weight": Z, "norm.weight": Z}},
    "dasheng": {"model": {"time_pos_embed": Z, "patch_embed.proj.weight": Z}, "config": {}},
    "cnn": {"features.0.weight": Z, "classifier.weight": Z},
}
EXPECTED = {
    "tera": "tera",
    "apc": "apc",
    "npc": "npc",
    "byol-a": "byol-a",
    "byol-a-wrapped": "byol-a",
}
OURS = {"tera", "apc", "npc", "byol-a"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_file_is_read_by_exactly_its_converter(case, tmp_path):
    path = tmp_path / f"{case}.ckpt"
    torch.save(CASES[case], path)
    found = [name for name, converter in CONVERTERS.items() if converter.detect(path)]
    if case in EXPECTED:
        assert found == [EXPECTED[case]], found
    else:
        assert not OURS & set(found), found


def test_s3prl_schedules_are_stubbed_and_nothing_else_is_allowed(tmp_path):
    """The runner pickles its learning-rate schedule by class name; those names (old and new
    module) are rebuilt as inert stubs, anything else is refused."""
    import sys
    import types

    for module in ("optimizers", "s3prl.optimizers"):
        fake = types.ModuleType(module)
        schedule = type("WarmupLinearSchedule", (), {"__module__": module})
        fake.WarmupLinearSchedule = schedule  # type: ignore[attr-defined]
        # pickle imports the module by name, so its parent package must import too: a fake
        # ``s3prl`` stands in when s3prl is not installed (make test has it not)
        fakes = {module: fake}
        if "." in module:
            parent = types.ModuleType(module.split(".")[0])
            parent.__path__ = []  # type: ignore[attr-defined]
            setattr(parent, module.split(".")[1], fake)
            fakes[parent.__name__] = parent
        saved = {name: sys.modules.get(name) for name in fakes}
        sys.modules.update(fakes)
        try:
            instance = schedule()
            instance.warmup, instance.t_total = 0.07, 1000
            states = {"Optimizer": {"param_groups": [{"schedule": instance}]}, "Step": 3}
            torch.save(states, tmp_path / "states.ckpt")
        finally:
            for name, old_module in saved.items():
                if old_module is None:
                    del sys.modules[name]
                else:
                    sys.modules[name] = old_module
        loaded = read_states(tmp_path / "states.ckpt", trust_pickle=False)
        stub = loaded["Optimizer"]["param_groups"][0]["schedule"]
        assert type(stub).__name__ == "PickledStub"
        assert stub.state == {"warmup": 0.07, "t_total": 1000}
    torch.save({"Step": 3, "Args": argparse.Namespace(hook=print)}, tmp_path / "other.ckpt")
    with pytest.raises(UnsafePickleError, match=r"builtins\.print"):
        read_states(tmp_path / "other.ckpt", trust_pickle=False)
