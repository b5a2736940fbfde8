"""User-supplied person boxes, so any detector (or hand annotation) can feed the engine.

Interface::

    boxes = load_boxes(path)                   # {frame_index: (K, 5) float32 [x1, y1, x2, y2, score]}
    boxes, ids = load_boxes_with_ids(path)     # ids: {frame_index: (K,) int64} or None
    write_boxes_json(path, boxes, ids=None)    # the JSON form below (atomic write)

Coordinates are pixels of the video *as displayed* (after rotation), x to the right, y down,
(x1, y1) the top-left and (x2, y2) the bottom-right corner; frame indices are 0-based in
decoding order (the engine's frame numbers). Frames that are not listed have no boxes. Scores
must lie in [0, 1] (default 1.0 when omitted). Track ids, if given, must be given for every box;
boxes with the same id are one person and the engine keeps that identity.

Accepted files (chosen by extension, ``.json`` or ``.csv``; otherwise by the first character):

1. JSON, per-frame object::

       {"frames": {"0": [[x1, y1, x2, y2, score], ...], "1": [...], ...}}

   Each row has 4 numbers (score 1.0), 5 (with score) or 6 (with score and track id).

2. JSON, list of boxes (a bare list, or the list under ``"boxes"``)::

       [{"frame": 0, "box": [x1, y1, x2, y2], "score": 0.93, "track_id": 1}, ...]

   ``score`` and ``track_id`` are optional.

3. CSV, one box per line, an optional header line, ``#`` comments and blank lines ignored::

       frame,x1,y1,x2,y2,score[,track_id]
       0,410.5,120,620,700,0.97,1

Errors raise :class:`vibe_engine.errors.BadInputError` with one line naming the file, the line
number and the problem.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from vibe_blender.core.atomic import atomic_write

from vibe_engine.errors import BadInputError

BoxDict = dict[int, np.ndarray]
IdDict = dict[int, np.ndarray]
CSV_HEADER = ("frame", "x1", "y1", "x2", "y2", "score", "track_id")
DEFAULT_SCORE = 1.0


class _Rows:
    """Collects validated rows: (frame, x1, y1, x2, y2, score, track_id | None)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.rows: list[tuple[int, float, float, float, float, float, int | None]] = []
        self.lines: list[int] = []

    def fail(self, line: int, problem: str) -> BadInputError:
        return BadInputError(f"{self.path}, line {line}: {problem}; see the box file formats in the docs")

    def add(self, line: int, frame: Any, box: Any, score: Any = DEFAULT_SCORE, track_id: Any = None) -> None:
        frame_i = self._integer(line, frame, "frame index")
        if not isinstance(box, (list, tuple)) or len(box) != 4:
            raise self.fail(line, f"a box needs 4 numbers x1, y1, x2, y2, got {box!r}")
        x1, y1, x2, y2 = (self._number(line, v, "box coordinate") for v in box)
        if not (x2 > x1 and y2 > y1):
            raise self.fail(line, f"box [{x1}, {y1}, {x2}, {y2}] is empty: need x2 > x1 and y2 > y1")
        score_f = self._number(line, score, "score")
        if not 0.0 <= score_f <= 1.0:
            raise self.fail(line, f"score {score_f} is outside [0, 1]: rescale your detector's scores")
        tid = None if track_id is None else self._integer(line, track_id, "track id")
        self.rows.append((frame_i, x1, y1, x2, y2, score_f, tid))
        self.lines.append(line)

    def _number(self, line: int, value: Any, what: str) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise self.fail(line, f"{what} {value!r} is not a number") from None
        if isinstance(value, bool) or not math.isfinite(number):
            raise self.fail(line, f"{what} {value!r} is not a finite number")
        return number

    def _integer(self, line: int, value: Any, what: str) -> int:
        number = self._number(line, value, what)
        if number != int(number) or number < 0:
            raise self.fail(line, f"{what} {value!r} must be a whole number >= 0")
        return int(number)

    def result(self) -> tuple[BoxDict, IdDict | None]:
        if not self.rows:
            raise BadInputError(f"{self.path}: no boxes found; see the box file formats in the docs")
        with_ids = [r[6] is not None for r in self.rows]
        if any(with_ids) and not all(with_ids):
            raise BadInputError(f"{self.path}: some boxes have a track id and some do not; give all or none")
        boxes: dict[int, list] = {}
        ids: dict[int, list] = {}
        for line, (frame, *values, tid) in zip(self.lines, self.rows):
            if tid is not None and tid in ids.get(frame, []):
                raise self.fail(line, f"track id {tid} appears twice in frame {frame}")
            boxes.setdefault(frame, []).append(values)
            ids.setdefault(frame, []).append(tid)
        out = {f: np.asarray(v, np.float32).reshape(-1, 5) for f, v in sorted(boxes.items())}
        out_ids = {f: np.asarray(ids[f], np.int64) for f in out} if all(with_ids) else None
        return out, out_ids


def _line_of(text: str, needle: str, occurrence: int = 0) -> int:
    """1-based line of the ``occurrence``-th appearance of ``needle`` in ``text`` (1 if absent)."""
    pos = -1
    for _ in range(occurrence + 1):
        pos = text.find(needle, pos + 1)
        if pos < 0:
            return 1
    return text.count("\n", 0, pos) + 1


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    keys = [k for k, _ in pairs]
    dup = next((k for k in keys if keys.count(k) > 1), None)
    if dup is not None:
        raise ValueError(f"key {dup!r} appears twice")
    return dict(pairs)


def _parse_json(rows: _Rows, text: str) -> None:
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise rows.fail(exc.lineno, f"not valid JSON ({exc.msg})") from None
    except ValueError as exc:
        raise rows.fail(1, str(exc)) from None
    if isinstance(data, dict) and "frames" in data:
        _parse_json_frames(rows, text, data["frames"])
    elif isinstance(data, list) or (isinstance(data, dict) and isinstance(data.get("boxes"), list)):
        _parse_json_list(rows, text, data if isinstance(data, list) else data["boxes"])
    else:
        raise rows.fail(1, 'expected {"frames": {...}}, {"boxes": [...]} or a list of boxes')


def _parse_json_frames(rows: _Rows, text: str, frames: Any) -> None:
    if not isinstance(frames, dict):
        raise rows.fail(_line_of(text, '"frames"'), '"frames" must map frame numbers to lists of boxes')
    for key, entries in frames.items():
        line = _line_of(text, f'"{key}"')
        if not isinstance(entries, list):
            raise rows.fail(line, f"frame {key!r}: expected a list of boxes")
        for entry in entries:
            if not isinstance(entry, list) or len(entry) not in (4, 5, 6):
                raise rows.fail(line, f"frame {key!r}: a box row needs 4, 5 or 6 numbers, got {entry!r}")
            rows.add(line, key, entry[:4], *entry[4:])


def _parse_json_list(rows: _Rows, text: str, entries: list) -> None:
    for i, entry in enumerate(entries):
        line = _line_of(text, '"frame"', i)
        if not isinstance(entry, dict) or "frame" not in entry or "box" not in entry:
            raise rows.fail(line, f"box {i}: expected an object with \"frame\" and \"box\", got {entry!r}")
        unknown = set(entry) - {"frame", "box", "score", "track_id"}
        if unknown:
            raise rows.fail(line, f"box {i}: unknown keys {sorted(unknown)}")
        rows.add(line, entry["frame"], entry["box"], entry.get("score", DEFAULT_SCORE), entry.get("track_id"))


def _parse_csv(rows: _Rows, text: str) -> None:
    reader = csv.reader(io.StringIO(text))
    header_allowed = True
    for fields in reader:
        fields = [f.strip() for f in fields]
        if not any(fields) or fields[0].startswith("#"):
            continue
        if header_allowed and fields[0].lower() == CSV_HEADER[0]:
            header_allowed = False
            continue
        header_allowed = False
        if len(fields) not in (5, 6, 7):
            raise rows.fail(reader.line_num, f"expected frame,x1,y1,x2,y2[,score[,track_id]], "
                                             f"got {len(fields)} fields")
        rows.add(reader.line_num, fields[0], fields[1:5], *fields[5:])


def load_boxes_with_ids(path: str | os.PathLike) -> tuple[BoxDict, IdDict | None]:
    """Read a box file (formats in the module docstring).

    Returns ({frame: (K, 5) float32 [x1, y1, x2, y2, score]}, {frame: (K,) int64 track ids} or
    None when the file has no track ids). Frames are sorted; rows keep the file's order."""
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise BadInputError(f"box file not found: {name!r}: check the path")
    try:
        text = Path(name).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"cannot read box file {name!r} ({exc}): give a UTF-8 JSON or CSV file") from None
    rows = _Rows(name)
    suffix = Path(name).suffix.lower()
    is_json = suffix == ".json" or (suffix != ".csv" and text.lstrip()[:1] in ("{", "["))
    (_parse_json if is_json else _parse_csv)(rows, text)
    return rows.result()


def load_boxes(path: str | os.PathLike) -> BoxDict:
    """Read a box file; {frame: (K, 5) float32 [x1, y1, x2, y2, score]} (track ids ignored)."""
    return load_boxes_with_ids(path)[0]


def write_boxes_json(path: str | os.PathLike, boxes: BoxDict, ids: IdDict | None = None) -> None:
    """Write boxes (and optional track ids) in the per-frame JSON form, atomically."""
    frames = {}
    for frame, rows in sorted(boxes.items()):
        rows = np.asarray(rows, np.float64).reshape(-1, 5).tolist()
        if ids is not None:
            rows = [r + [int(t)] for r, t in zip(rows, ids[frame])]
        frames[str(int(frame))] = rows
    with atomic_write(path) as fh:
        fh.write(json.dumps({"frames": frames}, indent=1).encode("utf-8"))
