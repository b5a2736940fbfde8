"""vibe_engine.people.boxes: the documented JSON and CSV box files, round trip, errors with line numbers."""
from __future__ import annotations

import json

import numpy as np
import pytest

from vibe_engine.people.boxes import load_boxes, load_boxes_with_ids, write_boxes_json
from vibe_engine.errors import BadInputError

EXPECTED = {
    0: np.array([[10, 20, 110, 220, 0.9], [300, 20, 400, 220, 1.0]], np.float32),
    2: np.array([[12, 22, 112, 222, 0.8]], np.float32),
}


def _same(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
        assert a[k].dtype == np.float32 and a[k].shape[1] == 5


def test_json_frames_form(tmp_path):
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"frames": {"2": [[12, 22, 112, 222, 0.8]],
                                           "0": [[10, 20, 110, 220, 0.9], [300, 20, 400, 220]]}}))
    boxes, ids = load_boxes_with_ids(path)
    _same(boxes, EXPECTED)
    assert ids is None and list(boxes) == [0, 2]


def test_json_list_forms_with_track_ids(tmp_path):
    entries = [{"frame": 0, "box": [10, 20, 110, 220], "score": 0.9, "track_id": 7},
               {"frame": 0, "box": [300, 20, 400, 220], "track_id": 3},
               {"frame": 2, "box": [12, 22, 112, 222], "score": 0.8, "track_id": 7}]
    for name, data in (("list.json", entries), ("wrapped.json", {"boxes": entries})):
        path = tmp_path / name
        path.write_text(json.dumps(data, indent=1))
        boxes, ids = load_boxes_with_ids(path)
        _same(boxes, EXPECTED)
        assert {k: v.tolist() for k, v in ids.items()} == {0: [7, 3], 2: [7]}


def test_csv_with_header_comments_and_ids(tmp_path):
    path = tmp_path / "b.csv"
    path.write_text("# from my detector\nframe,x1,y1,x2,y2,score,track_id\n"
                    "0,10,20,110,220,0.9,1\n\n0,300,20,400,220,1.0,2\n2,12,22,112,222,0.8,1\n")
    boxes, ids = load_boxes_with_ids(path)
    _same(boxes, EXPECTED)
    assert {k: v.tolist() for k, v in ids.items()} == {0: [1, 2], 2: [1]}
    plain = tmp_path / "plain.txt"  # no header, no score column, sniffed as CSV
    plain.write_text("5,1,2,3,4\n")
    np.testing.assert_array_equal(load_boxes(plain)[5], [[1, 2, 3, 4, 1.0]])


def test_round_trip(tmp_path):
    ids = {0: np.array([4, 5]), 2: np.array([4])}
    write_boxes_json(tmp_path / "out.json", EXPECTED, ids)
    boxes, got_ids = load_boxes_with_ids(tmp_path / "out.json")
    _same(boxes, EXPECTED)
    assert {k: v.tolist() for k, v in got_ids.items()} == {0: [4, 5], 2: [4]}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temp file left behind


@pytest.mark.parametrize("text, line, problem", [
    ("frame,x1,y1,x2,y2,score\n0,1,2,3,4,0.5\n1,5,5,2,9,0.5\n", 3, "is empty"),
    ("0,1,2,3,4,0.5\n0,1,2,3\n", 2, "got 4 fields"),
    ("0,1,2,3,4,1.5\n", 1, r"outside \[0, 1\]"),
    ("0,1,2,3,4,0.5\n-1,1,2,3,4,0.5\n", 2, "whole number >= 0"),
    ("0,1,2,3,4,0.5\n0,1,abc,3,4,0.5\n", 2, "'abc' is not a number"),
    ("0,1,2,3,4,0.5\n0,1,2,nan,4,0.5\n", 2, "not a finite number"),
])
def test_csv_errors_name_the_line(tmp_path, text, line, problem):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(BadInputError, match=f"bad.csv, line {line}: .*{problem}") as err:
        load_boxes(path)
    assert "\n" not in str(err.value) and err.value.exit_code == 4


@pytest.mark.parametrize("text, line, problem", [
    ('{"frames": {\n "0": [[1, 2, 3, 4]],\n "1": [[1, 2, 3]]\n}}', 3, "4, 5 or 6 numbers"),
    ('{"frames": {\n "0": [[1, 2, 3, 4]],\n "x": [[1, 2, 3, 4]]\n}}', 3, "'x' is not a number"),
    ('{"frames": {\n "0": [[1, 2, 3, 4]]\n "1": []}}', 3, "not valid JSON"),
    ('[\n {"frame": 0, "box": [1, 2, 3, 4]},\n {"frame": 1, "box": [1, 2, 3, 4], "scor": 1}\n]', 3,
     "unknown keys"),
    ('{"frames": {"0": [[1, 2, 3, 4]], "0": [[1, 2, 3, 4]]}}', 1, "appears twice"),
    ('{"people": []}', 1, "expected"),
])
def test_json_errors_name_the_line(tmp_path, text, line, problem):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(BadInputError, match=f"bad.json, line {line}: .*{problem}"):
        load_boxes(path)


def test_file_level_errors(tmp_path):
    with pytest.raises(BadInputError, match="not found"):
        load_boxes(tmp_path / "none.json")
    (tmp_path / "empty.csv").write_text("frame,x1,y1,x2,y2,score\n")
    with pytest.raises(BadInputError, match="no boxes found"):
        load_boxes(tmp_path / "empty.csv")
    (tmp_path / "mixed.csv").write_text("0,1,2,3,4,0.5,1\n1,1,2,3,4,0.5\n")
    with pytest.raises(BadInputError, match="some boxes have a track id"):
        load_boxes(tmp_path / "mixed.csv")
    (tmp_path / "twice.csv").write_text("0,1,2,3,4,0.5,1\n0,5,6,7,8,0.5,2\n0,9,9,20,20,0.5,1\n")
    with pytest.raises(BadInputError, match="line 3: track id 1 appears twice in frame 0"):
        load_boxes(tmp_path / "twice.csv")
