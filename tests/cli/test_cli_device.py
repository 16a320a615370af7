"""``echoic embed --device`` and ``echoic eval --embed-device`` on a CPU-only machine: the CPU gives
the default's rows, a missing GPU is one clear line, and the Ray options are checked before Ray
is needed."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from echoic.checkpoint import save
from echoic.cli.eval import _with_options
from echoic.cli.main import main
from echoic.data.testing import make_good_files
from echoic.embed.ray_extract import RayConfig
from echoic.errors import ConfigError


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_model_factory):
    path = tmp_path_factory.mktemp("model")
    save(tiny_model_factory(), path)
    return path


def test_embed_on_the_cpu_device_gives_the_default_rows(tmp_path, model_dir) -> None:
    audio = make_good_files(tmp_path / "audio", 3, seconds=0.5)[0].parent
    tables = []
    for name, extra in (("plain", []), ("cpu", ["--device", "cpu"])):
        out = tmp_path / f"{name}.parquet"
        args = ["embed", str(audio), "--model", str(model_dir), "--out", str(out), "--quiet"]
        assert main(args + extra) == 0
        tables.append(pq.read_table(out))
    assert tables[0].column("path").to_pylist() == tables[1].column("path").to_pylist()
    a, b = (np.stack(t.column("embedding").to_numpy(zero_copy_only=False)) for t in tables)
    assert np.array_equal(a, b)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_embed_on_a_missing_gpu_is_one_clear_error(tmp_path, model_dir, capsys) -> None:
    audio = make_good_files(tmp_path / "audio", 1, seconds=0.5)[0].parent
    args = ["embed", str(audio), "--model", str(model_dir), "--out", str(tmp_path / "o.parquet")]
    assert main([*args, "--device", "cuda", "--quiet"]) == 1
    assert "torch sees no CUDA GPU here" in capsys.readouterr().err


def test_eval_embed_device_builds_models_on_that_device(model_dir) -> None:
    assert _with_options("logmel_stats", "fp32", "cpu") == "logmel_stats"  # unchanged default
    factory = _with_options(str(model_dir), "bf16", "cpu")
    assert callable(factory) and factory().precision == "bf16"  # type: ignore[operator]
    placed = _with_options("logmel_stats", "bf16", "auto")  # precision: echoic models only
    if not torch.cuda.is_available():
        assert placed().device == torch.device("cpu")  # type: ignore[operator]


def test_ray_options_check_devices_before_ray_is_needed() -> None:
    assert RayConfig().worker_device(None) == "cpu"
    assert RayConfig(gpus_per_worker=0.5).worker_device("cuda") == "cuda"
    with pytest.raises(ConfigError, match="--gpus-per-worker 1"):
        RayConfig().worker_device("cuda")
    with pytest.raises(ConfigError, match="gives every Ray worker a GPU"):
        RayConfig(gpus_per_worker=1).worker_device("cpu")
    with pytest.raises(ConfigError, match="num_workers must be an integer"):
        RayConfig(num_workers=0)


def test_eval_jobs_auto_is_one_process_per_usable_core_for_the_unit_protocols(monkeypatch) -> None:
    import os

    from echoic.cli.eval import resolve_jobs

    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1, 2}, raising=False)
    assert resolve_jobs("auto", "hear") == 3 and resolve_jobs("auto", "hear-fast") == 3
    assert resolve_jobs("auto", "linear") == 3  # one unit per fold
    assert resolve_jobs("auto", "xares") == 1 and resolve_jobs("auto", "knn") == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: set(range(64)), raising=False)
    assert resolve_jobs("auto", "hear") == 8  # capped
    assert resolve_jobs("2", "linear") == 2
    with pytest.raises(SystemExit, match="--jobs must be a number or auto"):
        resolve_jobs("many", "hear")
