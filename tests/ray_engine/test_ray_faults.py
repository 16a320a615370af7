"""Faults of a Ray extraction (the Ray half of tests/faults/): kill -9 of a worker mid-run and of
the driver. Either way the finished output holds exactly the rows of an undisturbed run: no row
lost, none twice, no temporary file left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from ray_helpers import assert_same_rows, audio_with_bad_files, leftovers, slow_factory

from echoic.embed.extract import extract
from echoic.embed.ray_extract import RayConfig, extract_ray
from echoic.zoo.registry import resolve_model

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return audio_with_bad_files(tmp_path_factory.mktemp("audio"), good=24)


@pytest.fixture(scope="module")
def reference(audio: Path, model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "ref.parquet"
    extract([audio], out, resolve_model(str(model_dir)), progress=False)
    return out


def wait_for(condition, timeout: float = 120.0, what: str = "") -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.05)


def parts(out: Path) -> list[Path]:
    folder = out.with_name(out.name + ".parts")
    return sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(
    audio, model_dir, reference, tmp_path
) -> None:
    from ray_helpers import start_local_ray

    ray = start_local_ray()
    try:
        pid_dir, out = tmp_path / "pids", tmp_path / "ray.parquet"
        factory = slow_factory(str(model_dir), 0.4, pid_dir)
        config = RayConfig(num_workers=2, files_per_batch=2)
        result: dict[str, object] = {}

        def run() -> None:
            try:
                result["report"] = extract_ray([audio], out, factory, config=config, progress=False)
            except BaseException as err:  # surfaced by the assertion below
                result["error"] = err

        thread = threading.Thread(target=run)
        thread.start()
        wait_for(lambda: len(parts(out)) >= 1, what="the first part file")
        # the driver (this process) builds the model once too, for the identity: never kill it
        pids = [int(p.name) for p in pid_dir.iterdir()]
        victims = [pid for pid in pids if pid != os.getpid() and alive(pid)]
        os.kill(victims[0], signal.SIGKILL)  # kill -9 of a worker holding the model
        killed_with = len(parts(out))
        thread.join(timeout=300)
        assert not thread.is_alive() and "error" not in result, result.get("error")
    finally:
        ray.shutdown()
    assert killed_with < 22  # it died mid-run, with batches still to do
    assert not alive(victims[0])
    # the driver, two workers, and the one Ray started in place of the killed one
    assert len([p for p in pid_dir.iterdir() if int(p.name) != os.getpid()]) > 2
    assert_same_rows(out, reference)
    assert leftovers(out) == []


def test_a_killed_driver_is_resumed_by_the_next_run(audio, model_dir, reference, tmp_path) -> None:
    out, pid_dir = tmp_path / "ray.parquet", tmp_path / "pids"
    cmd = [sys.executable, str(HERE / "ray_driver.py"), str(model_dir), str(audio), str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    driver = subprocess.Popen([*cmd, str(pid_dir), "0.4"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_for(lambda: len(parts(out)) >= 2 or driver.poll() is not None, what="two parts")
    finally:
        driver.kill()  # kill -9 of the driver mid-run
        driver.wait()
    assert driver.returncode == -signal.SIGKILL, "the driver finished before it was killed"
    finished = parts(out)
    assert finished and not out.exists()
    start = time.monotonic()
    done = subprocess.run([*cmd, str(tmp_path / "pids2"), "0"], env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "already there" in done.stdout
    already = int(done.stdout.split("(")[1].split(" already")[0])
    assert already >= len(finished)  # the killed run's parts were kept, not redone
    assert_same_rows(out, reference)
    assert leftovers(out) == []
    print(f"driver killed with {len(finished)} parts; resumed in {time.monotonic() - start:.1f} s")
