"""Detection of the PaSST, ATST-Frame and msclap formats, among the other pickled formats: each
file is read by exactly its own converter (names only: no reference package needed)."""

from __future__ import annotations

import pytest
import torch

from echoic.convert import CONVERTERS

Z = torch.zeros(1)
PASST = ["cls_token", "dist_token", "new_pos_embed", "freq_new_pos_embed", "time_new_pos_embed"]
PASST += ["patch_embed.proj.weight", "blocks.0.attn.qkv.weight", "head.1.weight"]
ATST = ["pos_embed", "mask_embed", "norm_frame.weight", "patch_embed.patch_embed.weight"]
DASHENG = ["time_pos_embed", "freq_pos_embed", "patch_embed.proj.weight", "init_bn.1.running_mean"]
CASES = {
    "passt": {k: Z for k in PASST},
    "passt-wrapped": {**{f"net.{k}": Z for k in PASST}, "device_proxy": Z},
    "atst-lightning": {
        "state_dict": {f"model.{r}.encoder.{k}": Z for r in ("teacher", "student") for k in ATST},
        "hyper_parameters": {"arch": "base"},
    },
    "atst-bare": {k: Z for k in ATST},
    "msclap": {
        "model": {
            "audio_encoder.base.conv_block1.conv1.weight": Z,
            "audio_encoder.base.bn0.running_mean": Z,
            "caption_encoder.base.embeddings.word_embeddings.weight": Z,
        }
    },
    "dasheng": {"model": {k: Z for k in DASHENG}, "config": {}},
    "ast-pth": {f"module.v.{k}": Z for k in ("pos_embed", "patch_embed.proj.weight", "cls_token")},
}
EXPECTED = {
    "passt": "passt",
    "passt-wrapped": "passt",
    "atst-lightning": "atst-frame",
    "atst-bare": "atst-frame",
    "msclap": "msclap",
    "dasheng": "dasheng",
    "ast-pth": "ast-pth",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_file_is_read_by_exactly_its_converter(case, tmp_path):
    file = tmp_path / f"{case}.pt"
    torch.save(CASES[case], file)
    found = [name for name, converter in CONVERTERS.items() if converter.detect(file)]
    assert found == [EXPECTED[case]]
    assert [n for n, c in CONVERTERS.items() if c.detect(tmp_path)] == [EXPECTED[case]]
