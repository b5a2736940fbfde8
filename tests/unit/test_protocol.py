"""The shared protocol definitions against the golden transcripts in assets/protocol/."""
import json
from pathlib import Path

import pytest

from vibe_blender.core import protocol as P

GOLDEN = Path(__file__).resolve().parents[2] / "assets" / "protocol"


def _read(name):
    return (GOLDEN / name).read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize("name,status", [("ok.jsonl", "ok"), ("cancelled.jsonl", "cancelled"),
                                         ("error.jsonl", "error")])
def test_golden_transcripts_decode_and_follow_the_ordering_rules(name, status):
    messages = [P.decode_line(line) for line in _read(name)]
    P.check_transcript(messages)
    assert messages[-1]["status"] == status
    assert all(m.known and m.type in P.ENGINE_TYPES for m in messages)
    times = [m.t for m in messages]
    assert times == sorted(times)


def test_golden_lines_reencode_to_the_same_json():
    for name in ("ok.jsonl", "cancelled.jsonl", "error.jsonl"):
        for line in _read(name):
            assert json.loads(P.encode_line(P.decode_line(line))) == json.loads(line)


def test_garbage_transcript_separates_bad_lines_unknown_types_and_unknown_fields():
    outcome = []
    for line in _read("garbage.jsonl"):
        try:
            msg = P.decode_line(line)
        except P.ProtocolError:
            outcome.append("bad")
        else:
            outcome.append(msg.type if msg.known else "unknown")
    assert outcome == ["hello", "bad", "stage", "unknown", "bad", "bad", "error", "done"]
    stage = P.decode_line(_read("garbage.jsonl")[2])
    assert stage["name"] == "decode" and stage.get("hint") == "unknown fields are ignored"


def test_other_version_is_refused_with_a_message_naming_both_versions():
    with pytest.raises(P.ProtocolVersionError, match=r"v2.*v1"):
        P.decode_line('{"v":2,"type":"done","t":1,"status":"ok"}')
    with pytest.raises(P.ProtocolError, match="'v'"):
        P.decode_line('{"type":"done","t":1,"status":"ok"}')


def test_required_fields_and_types_are_enforced():
    with pytest.raises(P.ProtocolError, match="status"):
        P.decode_line('{"v":1,"type":"done","t":1}')
    with pytest.raises(P.ProtocolError, match="unknown status"):
        P.decode_line('{"v":1,"type":"done","t":1,"status":"maybe"}')
    with pytest.raises(P.ProtocolError, match="wrong type"):
        P.decode_line('{"v":1,"type":"stage","t":1,"name":"decode","index":"0","count":6}')
    with pytest.raises(P.ProtocolError, match="wrong type"):
        P.decode_line('{"v":1,"type":"stage","t":1,"name":"decode","index":true,"count":6}')
    with pytest.raises(P.ProtocolError):
        P.make_message("bogus", 0.0)


def test_encode_is_one_strict_json_line_and_nan_becomes_null():
    line = P.encode(P.PROGRESS, 1.23456, stage="features", done=3, total=10,
                    fps=float("nan"), eta_s=float("inf"))
    assert "\n" not in line
    obj = json.loads(line)
    assert obj == {"v": 1, "type": "progress", "t": 1.235, "stage": "features", "done": 3,
                   "total": 10, "fps": None, "eta_s": None}
    assert P.decode_line(line.encode("utf-8"))["done"] == 3


def test_cancel_line_with_or_without_version():
    assert json.loads(P.cancel_line()) == {"v": 1, "type": "cancel"}
    assert P.is_cancel(P.cancel_line())
    assert P.is_cancel('{"type": "cancel"}\n')
    assert not P.is_cancel("cancel")
    assert not P.is_cancel('{"type": "stage"}')
    assert not P.is_cancel('{"v": 7, "type": "cancel"}')


@pytest.mark.parametrize("types,bad", [
    (["stage", "done"], "start with 'hello'"),
    (["hello", "done", "done"], "exactly one"),
    (["hello", "result"], "exactly one"),
])
def test_transcript_rules_reject_bad_orderings(types, bad):
    fields = {"hello": dict(engine_version="0", python="3", torch=None, device="cpu", cuda=False),
              "stage": dict(name="decode", index=0, count=6), "done": dict(status="ok"),
              "result": dict(path="x", schema="s", people=[], fps=30.0, frames=1)}
    msgs = [P.make_message(t, 0.0, **fields[t]) for t in types]
    with pytest.raises(P.ProtocolError, match=bad):
        P.check_transcript(msgs)


def test_result_only_with_ok_and_error_only_with_error():
    hello = P.make_message("hello", 0, engine_version="0", python="3", torch="2", device="cpu",
                           cuda=False)
    err = P.make_message("error", 1, code="INTERNAL", message="m", detail=None)
    with pytest.raises(P.ProtocolError, match="'error'"):
        P.check_transcript([hello, err, P.make_message("done", 2, status="cancelled")])
    with pytest.raises(P.ProtocolError, match="'result'"):
        P.check_transcript([hello, P.make_message("done", 2, status="ok")])
