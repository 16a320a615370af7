"""The web explorer on a real collection: index build, server start, query latency over HTTP.

Builds a flat index of an ``echoic embed`` Parquet file into a temporary folder (timed), starts
``echoic serve`` on it twice in a subprocess — the first start computes the 2-D map, the second
reads it from the cache — timing each from the process's launch to the first answer of
``/api/health``, then measures, over HTTP on one kept-alive connection:

- search by id: ``GET /api/neighbours/{id}?k=10`` for ``--queries`` random rows;
- search by upload: ``POST /api/query?k=10`` with the bytes of ``--uploads`` random indexed
  files (each decoded in a child process, embedded with the index's model, searched);
- the map (``GET /api/map``) and a thumbnail (``GET /api/thumbnail/{id}``, first render).

The server runs with ``--threads 1``. Run::

    .venv/bin/python benchmarks/bench_serve.py --parquet results/collection/logmel_ts.parquet
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from echoic.search import build_index
from echoic.search.model import describe_model
from echoic.search.rows import read_source


def cpu_line() -> str:
    text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    name = re.search(r"^Model name:\s*(.+)$", text, re.M)
    return (
        f"CPU: {name.group(1) if name else '?'}, {os.cpu_count()} CPUs; load average "
        f"{os.getloadavg()[0]:.2f} at start"
    )


def start(index: Path) -> tuple[subprocess.Popen[str], str, int, float]:
    t0 = time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "echoic.cli.main", "serve", str(index), "--port", "0"]
    process = subprocess.Popen(
        [*command, "--threads", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    lines = []
    while True:
        line = process.stdout.readline()
        if not line:
            raise SystemExit(f"echoic serve stopped: {''.join(lines)}")
        lines.append(line)
        if m := re.search(r"at http://([\d.]+):(\d+)/", line):
            host, port = m.group(1), int(m.group(2))
            break
    while True:
        try:
            conn = http.client.HTTPConnection(host, port, timeout=5)
            conn.request("GET", "/api/health")
            if conn.getresponse().status == 200:
                conn.close()
                break
        except OSError:
            time.sleep(0.01)
    return process, host, port, time.perf_counter() - t0


def timed(conn: http.client.HTTPConnection, method: str, url: str, body: bytes | None = None):
    t0 = time.perf_counter()
    conn.request(method, url, body=body)
    response = conn.getresponse()
    data = response.read()
    elapsed = time.perf_counter() - t0
    if response.status != 200:
        raise SystemExit(f"{method} {url}: {response.status} {data[:300]!r}")
    return elapsed, data


def stats(seconds: list[float]) -> str:
    ms = np.asarray(seconds) * 1000
    return (
        f"p50 {np.percentile(ms, 50):7.1f} ms  p99 {np.percentile(ms, 99):7.1f} ms  "
        f"max {ms.max():7.1f} ms  (n = {len(ms)})"
    )


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--parquet", required=True, help="`echoic embed` output of the collection")
    p.add_argument("--queries", type=int, default=300, help="searches by id")
    p.add_argument("--uploads", type=int, default=60, help="searches by uploaded file")
    args = p.parse_args()
    print(cpu_line())
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "idx"
        t0 = time.perf_counter()
        source = read_source(args.parquet)
        model, _ = describe_model(source)
        report = build_index([args.parquet], index, model=model, progress=False)
        print(
            f"index build (flat, in process, reading the Parquet included): "
            f"{time.perf_counter() - t0:.2f} s for {report.added} clips of {source.model}"
        )
        for attempt in ("first start (map computed)", "second start (map cached)"):
            process, host, port, seconds = start(index)
            print(f"{attempt}: {seconds:.2f} s from launch to the first /api/health answer")
            if attempt.startswith("first"):
                stop(process)
        conn = http.client.HTTPConnection(host, port, timeout=60)
        meta = json.loads(timed(conn, "GET", "/api/info")[1])
        count = meta["count"]
        print(
            f"serving {count} rows; map {meta['map']['method']} of {meta['map']['points']} points"
        )
        elapsed, body = timed(conn, "GET", "/api/map")
        print(f"GET /api/map: {elapsed * 1000:.0f} ms, {len(body) / 2**20:.2f} MiB")
        row = int(rng.integers(count))
        elapsed, body = timed(conn, "GET", f"/api/thumbnail/{row}")
        print(f"GET /api/thumbnail (first render): {elapsed * 1000:.0f} ms, {len(body)} bytes")
        timed(conn, "GET", "/api/neighbours/0?k=10")  # warm-up
        by_id = [
            timed(conn, "GET", f"/api/neighbours/{int(r)}?k=10")[0]
            for r in rng.integers(0, count, args.queries)
        ]
        print(f"search by id     (GET /api/neighbours, k=10): {stats(by_id)}")
        paths = [
            json.loads(timed(conn, "GET", f"/api/neighbours/{int(r)}?k=1")[1])["query"]["name"]
            for r in rng.integers(0, count, args.uploads)
        ]
        root = Path(os.path.commonpath([h for h in _indexed_paths(index)]))
        uploads, sizes = [], []
        for name in paths:
            data = (root / name).read_bytes()
            sizes.append(len(data))
            uploads.append(timed(conn, "POST", f"/api/query?k=10&name={Path(name).name}", data)[0])
        print(
            f"search by upload (POST /api/query, k=10):     {stats(uploads)}; files "
            f"{np.median(sizes) / 1024:.0f} kB median"
        )
        conn.close()
        stop(process)


def _indexed_paths(index: Path) -> list[str]:
    import pyarrow.parquet as pq

    paths = pq.read_table(index / "items.parquet", columns=["path"]).column("path").to_pylist()
    return sorted({os.path.dirname(str(p)) for p in paths})


if __name__ == "__main__":
    main()
