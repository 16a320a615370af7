"""``echoic embed --engine ray`` on a local Ray (2 CPUs): the local path's rows, bad-file reports
and resume, through the CLI and the Python API."""

from __future__ import annotations

import csv
from functools import partial
from pathlib import Path

import pytest
from ray_helpers import assert_same_rows, audio_with_bad_files, leftovers, rows, start_local_ray

from echoic.cli.embed import build_model
from echoic.cli.main import main
from echoic.embed.extract import extract
from echoic.embed.ray_extract import RayConfig, extract_ray
from echoic.zoo.registry import resolve_model


@pytest.fixture(scope="module")
def ray_session():
    ray = start_local_ray()
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return audio_with_bad_files(tmp_path_factory.mktemp("audio"), good=14)


def errors(out: Path) -> dict[str, str]:
    with out.with_name(out.stem + ".errors.csv").open() as fh:
        return {row["path"]: row["error"] for row in csv.DictReader(fh)}


@pytest.mark.parametrize("timestamps", [False, True])
def test_rows_and_bad_files_equal_the_local_path(
    ray_session, audio, model_dir, tmp_path, timestamps
) -> None:
    local = extract([audio], tmp_path / "local.parquet", resolve_model(str(model_dir)),
                    timestamps=timestamps, progress=False)  # fmt: skip
    config = RayConfig(num_workers=2, files_per_batch=4)
    factory = partial(build_model, str(model_dir), {})
    out = tmp_path / "ray.parquet"
    report = extract_ray([audio], out, factory, timestamps, config=config, progress=False)
    assert_same_rows(out, local.out)
    assert (report.written, report.already_done) == (local.written, 0)
    assert report.errors == local.errors  # same files, same causes, same order
    assert report.converted == local.converted
    assert errors(out) == errors(local.out)
    assert abs(report.audio_s - local.audio_s) < 1e-9
    assert leftovers(out) == []


def test_a_rerun_skips_finished_files_and_embeds_new_ones(
    ray_session, audio, model_dir, tmp_path
) -> None:
    factory = partial(build_model, str(model_dir), {})
    config = RayConfig(num_workers=2, files_per_batch=3)
    out = tmp_path / "ray.parquet"
    first = extract_ray([audio / "good"], out, factory, config=config, progress=False)
    assert first.written == 14
    again = extract_ray([audio], out, factory, config=config, progress=False)
    local = extract([audio], tmp_path / "local.parquet", resolve_model(str(model_dir)),
                    progress=False)  # fmt: skip
    assert (again.already_done, again.written) == (14, local.written - 14)
    assert sorted(rows(out)[0]) == sorted(rows(local.out)[0])  # nothing lost or written twice
    assert len(rows(out)[0]) == local.written


def test_the_cli_engine_ray(ray_session, audio, model_dir, tmp_path, capsys) -> None:
    out = tmp_path / "cli.parquet"
    args = ["embed", str(audio), "--model", str(model_dir), "--out", str(out), "--quiet"]
    assert main([*args, "--engine", "ray", "--num-workers", "2"]) == 0
    printed = capsys.readouterr().out
    assert "on 2 Ray worker(s) (cpu, 0 GPU each)" in printed and "file(s) skipped" in printed
    assert main([*args, "--engine", "ray"]) == 0  # a re-run: everything already there
    assert "wrote 0 rows" in capsys.readouterr().out
    local = tmp_path / "local.parquet"
    assert (
        main(["embed", str(audio), "--model", str(model_dir), "--out", str(local), "--quiet"]) == 0
    )
    assert_same_rows(out, local)
