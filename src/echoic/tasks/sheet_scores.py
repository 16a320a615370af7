"""Scores of the music21 corpus for ``sheet_snippets``: what a piece holds, and its engraving.

* :func:`read_piece` parses one score with music21 (ties merged by ``stripTies``) into a
  :class:`Piece`: its measures (position, number, offset and length in quarter notes: the longest
  part's, ``complete`` when every part fills it) and its sounding notes (part, MIDI pitch, onset
  and end in quarter notes, placed from their own measure's start; grace notes, which have no
  length, and unpitched notes are left out).
* :func:`verovio_measure_onsets` loads the same file into verovio and reads the measure onsets of
  its timemap (repeats not expanded). :func:`analyse_piece` accepts a piece only when they equal
  music21's offsets, so the measures verovio engraves are the measures fluidsynth plays, and
  caches the result per file content (parsing is most of a full build's CPU time).
* :func:`engrave` renders measure ranges of one score: verovio selects the measures (1-based
  positions, ``measureRange``), lays them out as one system without header or footer at a fixed
  scale, the SVG loses its text (part names, measure numbers, lyrics, tempo and other words: what
  is left is notation) and cairosvg rasterises it on white; the grayscale image is centred on a
  canvas of :data:`CANVAS_HEIGHT` pixels (scaled down only when taller), its width kept.

music21, verovio and cairosvg are the ``sheet`` extra (``pip install 'echoic[sheet]'``); they are
imported on use. Verovio's xml:id seed is reset before every load, so the SVG, hence the PNG
bytes, are a function of the file and the range only.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from echoic.tasks.base import TaskDataError

VEROVIO_SCALE = 24
"""Verovio's scale in percent: a staff space is about 4.3 pixels, four staves about 200 pixels."""
CANVAS_HEIGHT = 224
"""Pixels of every image's height (narrower systems are centred, taller ones scaled down)."""
TEXT_CLASSES = frozenset(
    {"label", "labelAbbr", "mNum", "verse", "tempo", "dir", "harm", "reh", "pgHead", "pgFoot"}
)
"""SVG groups removed before rasterising: words, not notation."""
SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
ANALYSIS_VERSION = 1
"""Bump when :func:`read_piece` changes: cached analyses of other versions are not read."""
INSTALL_HINT = "pip install 'echoic[sheet]' (music21, verovio, cairosvg)"


@dataclass(frozen=True)
class Measure:
    """One measure: 0-based ``position`` in the part, music21's ``number``, ``offset`` and
    length in quarter notes (a pickup measure is as long as its content); ``complete``: every
    part fills it (False where the encoding's parts disagree on its length)."""

    position: int
    number: int
    offset: float
    quarters: float
    complete: bool = True


@dataclass(frozen=True)
class ScoreNote:
    """One sounding pitch: ``part`` index, MIDI ``pitch``, ``onset`` and ``end`` in quarters."""

    part: int
    pitch: int
    onset: float
    end: float


@dataclass(frozen=True)
class Piece:
    """A parsed score: corpus ``key`` (path below music21's corpus folder), file ``path``,
    ``composer`` (its corpus folder), ``staves`` (music21 parts), measures and notes."""

    key: str
    path: str
    composer: str
    staves: int
    measures: tuple[Measure, ...]
    notes: tuple[ScoreNote, ...]

    def notes_between(self, start: float, end: float) -> list[ScoreNote]:
        """Notes sounding in ``[start, end)`` quarters, clipped to it (a note held into the
        range starts at ``start``, one held past it ends at ``end``)."""
        return [
            ScoreNote(n.part, n.pitch, max(n.onset, start), min(n.end, end))
            for n in self.notes
            if n.onset < end and n.end > start
        ]


def require_modules() -> None:
    """Raise :class:`TaskDataError` naming the install line when the sheet extra is missing."""
    import importlib.util

    missing = [m for m in ("music21", "verovio", "cairosvg") if importlib.util.find_spec(m) is None]
    if missing:
        raise TaskDataError(
            f"the sheet_snippets task needs {', '.join(missing)}, not installed here; "
            f"install: {INSTALL_HINT}"
        )
    try:
        import cairosvg  # noqa: F401  (needs the libcairo2 shared library)
    except OSError as err:
        raise TaskDataError(
            f"cairosvg does not load ({err}); expected the cairo library: apt-get install libcairo2"
        ) from err


def corpus_root() -> Path:
    """music21's bundled corpus folder."""
    import music21

    return Path(music21.__file__).parent / "corpus"


def read_piece(key: str) -> Piece:
    """Parse ``key`` (a path below :func:`corpus_root`) into a :class:`Piece`.

    Measure ``i`` lasts as long as its longest part (the parts of a few encodings disagree by a
    beat here and there: such a measure is marked ``complete=False``), and every note is placed
    from its own measure's start, so one part's short measure does not shift it from then on.
    Raises :class:`TaskDataError` when the parts have different numbers of measures.
    """
    from music21 import chord, converter, note, stream

    path = corpus_root() / key
    score: Any = converter.parse(str(path))
    parts = [list(part.getElementsByClass(stream.Measure)) for part in score.parts]
    if not parts or not parts[0] or len({len(p) for p in parts}) != 1:
        raise TaskDataError(
            f"{key}: expected parts with the same number of measures; found "
            f"{sorted({len(p) for p in parts})}"
        )
    # lengths before merging ties: a merged note makes its measure look longer
    lengths = [[float(m.duration.quarterLength) for m in part] for part in parts]
    stripped = score.stripTies(inPlace=False)
    parts = [list(part.getElementsByClass(stream.Measure)) for part in stripped.parts]
    measures: list[Measure] = []
    offset = 0.0
    for i, measure in enumerate(parts[0]):
        quarters = max(part[i] for part in lengths)
        complete = all(part[i] == quarters for part in lengths)
        measures.append(Measure(i, int(measure.number), offset, quarters, complete))
        offset += quarters
    notes = []
    for index, part in enumerate(parts):
        for i, measure in enumerate(part):
            for element in measure.recurse().notes:
                length = float(element.quarterLength)
                if length <= 0 or element.duration.isGrace:
                    continue
                if isinstance(element, chord.Chord):
                    pitches = [p.midi for p in element.pitches]
                elif isinstance(element, note.Note):
                    pitches = [element.pitch.midi]
                else:  # unpitched percussion
                    continue
                onset = measures[i].offset + float(element.getOffsetInHierarchy(measure))
                for pitch in pitches:
                    notes.append(ScoreNote(index, int(pitch), onset, onset + length))
    notes.sort(key=lambda n: (n.onset, n.part, n.pitch, n.end))
    composer = key.split("/", 1)[0]
    return Piece(key, str(path), composer, len(parts), tuple(measures), tuple(notes))


def analyse_piece(key: str) -> Piece | str:
    """The parsed piece, or why it cannot be used (music21 fails, the parts have different
    numbers of measures, verovio's measure onsets differ); cached on disk (:func:`cache_dir`)."""
    path = corpus_root() / key
    cached = cache_dir() / f"{hashlib.sha256(path.read_bytes()).hexdigest()}.json"
    if cached.is_file():
        return _piece_from_json(json.loads(cached.read_text(encoding="utf-8")), key)
    result: Piece | str
    try:
        result = read_piece(key)
    except TaskDataError as err:
        result = str(err)
    except Exception as err:  # music21 fails on a few encodings; those pieces are left out
        result = f"{key}: music21 could not parse it ({type(err).__name__}: {err})"
    if isinstance(result, Piece):
        onsets = verovio_measure_onsets(result.path)
        offsets = [m.offset for m in result.measures]
        if len(onsets) != len(offsets) or not all(
            abs(a - b) < 1e-6 for a, b in zip(onsets, offsets, strict=True)
        ):
            result = f"{key}: verovio's measure onsets differ from music21's"
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_name(f"{cached.name}.{os.getpid()}.partial")
    tmp.write_text(json.dumps(_piece_to_json(result)), encoding="utf-8")
    os.replace(tmp, cached)
    return result


def cache_dir() -> Path:
    """Where :func:`analyse_piece` keeps its results: ``<echoic cache>/sheet_pieces/<versions>``
    (``$ECHOIC_CACHE``, default ``~/.cache/echoic``), one JSON per score file content."""
    import importlib.metadata as metadata

    from echoic.hub import echoic_cache_dir

    versions = "-".join(f"{name}{metadata.version(name)}" for name in ("music21", "verovio"))
    return echoic_cache_dir() / "sheet_pieces" / f"v{ANALYSIS_VERSION}-{versions}"


def _piece_to_json(result: Piece | str) -> dict[str, Any]:
    if isinstance(result, str):
        return {"skipped": result}
    return {
        "staves": result.staves,
        "measures": [[m.number, m.offset, m.quarters, m.complete] for m in result.measures],
        "notes": [[n.part, n.pitch, n.onset, n.end] for n in result.notes],
    }


def _piece_from_json(data: dict[str, Any], key: str) -> Piece | str:
    if "skipped" in data:
        return str(data["skipped"])
    measures = tuple(
        Measure(i, int(number), float(offset), float(quarters), bool(complete))
        for i, (number, offset, quarters, complete) in enumerate(data["measures"])
    )
    notes = tuple(
        ScoreNote(int(part), int(pitch), float(onset), float(end))
        for part, pitch, onset, end in data["notes"]
    )
    path = str(corpus_root() / key)
    return Piece(key, path, key.split("/", 1)[0], int(data["staves"]), measures, notes)


def _toolkit(path: str) -> Any:
    import verovio

    verovio.enableLog(verovio.LOG_OFF)
    toolkit = verovio.toolkit()
    toolkit.setOptions(
        {
            "breaks": "none",
            "header": "none",
            "footer": "none",
            "adjustPageHeight": True,
            "adjustPageWidth": True,
            "scale": VEROVIO_SCALE,
            "expandNever": True,
        }
    )
    toolkit.resetXmlIdSeed(0)
    if not toolkit.loadFile(path):
        raise TaskDataError(f"verovio could not load {path}; expected MusicXML it can read")
    return toolkit


def verovio_measure_onsets(path: str) -> list[float]:
    """Quarter-note onsets of the measures in verovio's timemap of ``path`` (in score order)."""
    toolkit = _toolkit(path)
    timemap = toolkit.renderToTimemap({"includeMeasures": True})
    return [float(event["qstamp"]) for event in timemap if "measureOn" in event]


def _strip_text(svg: str) -> bytes:
    ET.register_namespace("", SVG_NS)
    ET.register_namespace("xlink", XLINK_NS)
    root = ET.fromstring(svg)
    for parent in list(root.iter()):
        for child in list(parent):
            if TEXT_CLASSES.intersection(child.get("class", "").split()):
                parent.remove(child)
    return ET.tostring(root, encoding="utf-8")


def _count_measures(svg: bytes) -> int:
    root = ET.fromstring(svg)
    return sum("measure" in e.get("class", "").split() for e in root.iter())


def fit_canvas(image: Any, height: int = CANVAS_HEIGHT) -> Any:
    """A grayscale PIL image centred vertically on a white canvas ``height`` pixels tall
    (scaled down, aspect kept, when it is taller)."""
    from PIL import Image

    if image.height > height:
        width = max(1, round(image.width * height / image.height))
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    canvas = Image.new("L", (image.width, height), 255)
    canvas.paste(image, (0, (height - image.height) // 2))
    return canvas


def engrave(path: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    """PNG bytes of measures ``first..last`` (0-based positions, inclusive) of the score at
    ``path``, one image per range (module docstring)."""
    import cairosvg
    from PIL import Image

    toolkit = _toolkit(path)
    out = []
    for first, last in ranges:
        if not toolkit.select({"measureRange": f"{first + 1}-{last + 1}"}):
            raise TaskDataError(
                f"verovio could not select measures {first + 1}-{last + 1} of {path}"
            )
        toolkit.redoLayout()
        svg = _strip_text(toolkit.renderToSVG(1))
        found = _count_measures(svg)
        if found != last - first + 1:
            raise TaskDataError(
                f"verovio engraved {found} measures of {path} for positions {first}-{last}; "
                f"expected {last - first + 1}"
            )
        png = cairosvg.svg2png(bytestring=svg, background_color="white")
        image = fit_canvas(Image.open(io.BytesIO(png)).convert("L"))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out
