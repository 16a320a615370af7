"""Queries of ``echoic search``: what each argument means, its vector, and the answers.

A query argument is, in this order of precedence:

- an existing ``*.parquet`` file written by ``echoic embed``: every row is a query (refused when
  another model embedded it);
- an existing file: audio, embedded with the index's model;
- ``id:N``, ``#N`` or ``N``: row ``N`` of the index (its stored vector);
- ``FILE@START-END`` (seconds): that part of an audio file, embedded with the index's model.

A scene index is queried with the scene embedding; a timestamp index with the mean of the query's
timestamp embeddings (the pooling of its windows). A query that cannot be turned into a vector (a
file that does not decode, a row id out of range) is reported and skipped; the others are answered.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from echoic.data.audio import load_audio, require_min_samples
from echoic.embed.base import EmbeddingModel
from echoic.errors import AudioError, EchoicError
from echoic.search.index import SearchIndex
from echoic.search.rows import iter_rows, read_source

_ROW = re.compile(r"^(?:id:|#)?(?P<row>\d+)$")
_RANGE = re.compile(r"^(?P<path>.+)@(?P<start>\d+(?:\.\d*)?)-(?P<end>\d+(?:\.\d*)?)$")
AUDIO_KINDS = ("audio", "range")


@dataclass
class Query:
    """One query argument, parsed (see module docstring)."""

    text: str
    kind: str  # audio | range | row | parquet
    path: Path | None = None
    row: int | None = None
    start_s: float = 0.0
    end_s: float | None = None


def parse_query(text: str) -> Query:
    path = Path(text)
    if path.is_file():
        return Query(text, "parquet" if path.suffix == ".parquet" else "audio", path)
    if m := _ROW.match(text):
        return Query(text, "row", row=int(m["row"]))
    if m := _RANGE.match(text):
        start, end = float(m["start"]), float(m["end"])
        if end <= start:
            raise EchoicError(f"query {text!r}: a time range needs START < END (seconds)")
        return Query(text, "range", Path(m["path"]), start_s=start, end_s=end)
    return Query(text, "audio", path)  # a missing file is reported when it is read


@dataclass
class QueryVector:
    query: str
    kind: str
    vector: np.ndarray


@dataclass
class Hit:
    rank: int
    id: int
    path: str
    offset_s: float
    duration_s: float
    score: float


@dataclass
class Answer:
    query: str
    kind: str
    hits: list[Hit] = field(default_factory=list)


def _pool(model: EmbeddingModel, wave: np.ndarray, level: str) -> np.ndarray:
    emb = model.embed([wave])[0]
    vector = emb.scene if level == "scene" else emb.timestamps.float().mean(0)
    return np.asarray(vector.detach().float().cpu().numpy(), np.float32)


def _audio_vector(query: Query, model: EmbeddingModel, level: str) -> np.ndarray:
    assert query.path is not None
    duration = None if query.end_s is None else query.end_s - query.start_s
    wave, _ = load_audio(
        query.path,
        sample_rate=model.sample_rate,
        mono=int(getattr(model, "channels", 1)) == 1,
        offset_s=query.start_s,
        duration_s=duration,
    )
    require_min_samples(wave, int(model.min_samples), query.path)
    return _pool(model, wave, level)


def _parquet_vectors(query: Query, index: SearchIndex) -> list[QueryVector]:
    assert query.path is not None
    source = read_source(query.path)
    info = index.meta.model
    if source.identity != info.identity:
        raise EchoicError(
            f"refused: embedded by {source.model!r} (identity {source.identity}), but the index "
            f"holds vectors of {info.label!r} (identity {info.identity}); embed the audio with "
            "that model"
        )
    # a timestamp index: the file as one window (the mean of its frames), as audio queries
    level, whole = index.meta.level, 1e12
    out = []
    for _, rows in iter_rows(source, level, window_s=whole, hop_s=whole):
        for path, vector in zip(rows.paths, rows.vectors, strict=True):
            out.append(QueryVector(f"{query.text}:{path}", "parquet", vector))
    return out


def query_vectors(
    queries: list[Query], index: SearchIndex, model: Callable[[], EmbeddingModel]
) -> tuple[list[QueryVector], list[tuple[str, str]]]:
    """The vectors of ``queries`` and ``(query, why)`` for each one skipped.

    ``model`` is called once, before the first audio query (its errors are not per query: a
    model that cannot embed for this index stops the command).
    """
    level = index.meta.level
    embedder = model() if any(q.kind in AUDIO_KINDS for q in queries) else None
    vectors: list[QueryVector] = []
    errors: list[tuple[str, str]] = []
    for q in queries:
        try:
            if q.kind == "row":
                assert q.row is not None
                vectors.append(QueryVector(q.text, "row", index.vector(q.row)))
            elif q.kind == "parquet":
                vectors.extend(_parquet_vectors(q, index))
            else:
                assert embedder is not None
                vectors.append(QueryVector(q.text, q.kind, _audio_vector(q, embedder, level)))
        except AudioError as err:  # its message starts with the path, which is the query here
            errors.append((q.text, err.cause + (f" ({err.fix})" if err.fix else "")))
        except EchoicError as err:
            errors.append((q.text, str(err)))
        except Exception as err:  # a decoder or model bug must not lose the other queries
            errors.append((q.text, f"{type(err).__name__}: {err}"))
    return vectors, errors


def answer(index: SearchIndex, vectors: list[QueryVector], k: int) -> list[Answer]:
    """The ``k`` nearest rows of every query vector (one batched FAISS search)."""
    if not vectors:
        return []
    scores, ids = index.search(np.stack([v.vector for v in vectors]), k)
    paths = index.items.column("path")
    offsets = index.items.column("offset_s")
    durations = index.items.column("duration_s")
    answers = []
    for v, row_scores, row_ids in zip(vectors, scores, ids, strict=True):
        hits = [
            Hit(
                rank,
                int(i),
                str(paths[int(i)].as_py()),
                float(offsets[int(i)].as_py()),
                float(durations[int(i)].as_py()),
                float(s),
            )
            for rank, (s, i) in enumerate(zip(row_scores, row_ids, strict=True), 1)
            if i >= 0
        ]
        answers.append(Answer(v.query, v.kind, hits))
    return answers


def score_name(metric: str) -> str:
    return "cosine similarity" if metric == "cosine" else "squared L2 distance"


def format_answers(answers: list[Answer]) -> str:
    lines = []
    for a in answers:
        lines.append(f"query {a.query} ({a.kind})")
        for h in a.hits:
            end = h.offset_s + h.duration_s
            lines.append(
                f"  {h.rank:3d}  {h.score:8.4f}  {h.path}  {h.offset_s:.2f}-{end:.2f} s  (id {h.id})"
            )
    return "\n".join(lines)


CSV_COLUMNS = ("query", "kind", "rank", "id", "path", "offset_s", "end_s", "duration_s", "score")


def write_answers(
    path: Path, answers: list[Answer], errors: list[tuple[str, str]], index: SearchIndex, k: int
) -> None:
    """``.json`` (answers, errors and the index's model) or ``.csv`` (one row per hit)."""
    path = Path(path)
    if path.suffix not in (".json", ".csv"):
        raise EchoicError(
            f"--out {path}: expected a .json or .csv file name; found {path.suffix!r}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(CSV_COLUMNS)
            for a in answers:
                for h in a.hits:
                    end = h.offset_s + h.duration_s
                    writer.writerow(
                        [
                            a.query,
                            a.kind,
                            h.rank,
                            h.id,
                            h.path,
                            h.offset_s,
                            end,
                            h.duration_s,
                            h.score,
                        ]
                    )
        return
    meta = index.meta
    payload: dict[str, Any] = {
        "index": str(index.directory.resolve()),
        "model": meta.model.label,
        "identity": meta.model.identity,
        "level": meta.level,
        "metric": meta.metric,
        "score": score_name(meta.metric),
        "k": k,
        "queries": [asdict(a) for a in answers],
        "errors": [{"query": q, "error": e} for q, e in errors],
    }
    path.write_text(json.dumps(payload, indent=1) + "\n")
