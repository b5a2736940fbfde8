"""The engine ⇄ add-on protocol: JSON lines (docs/engine-protocol.md). Standard library only.

The engine writes one JSON object per line to stdout; every engine message carries
``v`` (``PROTOCOL_VERSION``), ``type`` and ``t`` (seconds since the engine started). The add-on
writes ``{"v": 1, "type": "cancel"}`` to the engine's stdin (closing stdin also means cancel).

Compatibility rules: unknown fields are kept in ``Message.fields`` and otherwise ignored; an unknown
``type`` decodes (``Message.known`` is False) so the reader can log it; a different ``v`` raises
``ProtocolVersionError``; a line that is not a JSON object, or a known type missing a required
field, raises ``ProtocolError``.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from .errors import VibeError

PROTOCOL_VERSION = 1

HELLO = "hello"
STAGE = "stage"
PROGRESS = "progress"
WARNING = "warning"
RESULT = "result"
ERROR = "error"
DONE = "done"
REPORT = "report"
CANCEL = "cancel"

#: Stage names in the order the engine runs them (``stage.index`` is 0-based into this tuple).
STAGES = ("decode", "detect", "track", "features", "regress", "write")
#: ``done.status`` values.
DONE_STATUSES = ("ok", "cancelled", "error")
#: ``error.code`` values the engine sends (``vibe_engine/errors.py``); readers accept others too.
ERROR_CODES = (
    "USAGE", "BAD_INPUT", "VIDEO_UNREADABLE", "NO_PERSON", "MODEL_MISSING", "MODEL_INVALID",
    "OUTPUT_UNWRITABLE", "OUT_OF_MEMORY", "CANCELLED", "INTERNAL",
)

#: Required fields per message type (besides ``v``, ``type`` and ``t``), with their JSON types.
REQUIRED_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    HELLO: {"engine_version": (str,), "python": (str,), "torch": (str, type(None)),
            "device": (str,), "cuda": (bool,)},
    STAGE: {"name": (str,), "index": (int,), "count": (int,)},
    PROGRESS: {"stage": (str,), "done": (int,), "total": (int, type(None)),
               "fps": (int, float, type(None)), "eta_s": (int, float, type(None))},
    WARNING: {"code": (str,), "message": (str,)},
    RESULT: {"path": (str,), "schema": (str,), "people": (list,), "fps": (int, float),
             "frames": (int,)},
    ERROR: {"code": (str,), "message": (str,), "detail": (str, type(None))},
    DONE: {"status": (str,)},
    REPORT: {"kind": (str,), "data": (dict,)},
    CANCEL: {},
}
#: Message types the engine sends; ``CANCEL`` is the only one the add-on sends.
ENGINE_TYPES = (HELLO, STAGE, PROGRESS, WARNING, RESULT, ERROR, DONE, REPORT)


class ProtocolError(VibeError):
    """A line that is not a valid protocol message."""


class ProtocolVersionError(ProtocolError):
    """A message from a different, incompatible protocol version."""


@dataclass(frozen=True)
class Message:
    """One decoded protocol message.

    ``fields`` holds every key except ``v``, ``type`` and ``t`` (unknown keys included).
    ``t`` is seconds since the engine started (None for add-on → engine messages).
    """

    type: str
    t: float | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    v: int = PROTOCOL_VERSION

    @property
    def known(self) -> bool:
        """True for a message type this protocol version defines."""
        return self.type in REQUIRED_FIELDS

    def get(self, key: str, default: Any = None) -> Any:
        """A field value, or ``default`` when absent."""
        return self.fields.get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self.fields[key]

    def to_dict(self) -> dict[str, Any]:
        """The message as the JSON object that goes on the wire."""
        out: dict[str, Any] = {"v": self.v, "type": self.type}
        if self.t is not None:
            out["t"] = self.t
        out.update(self.fields)
        return out


def _check_fields(msg_type: str, fields: dict[str, Any]) -> None:
    """Raise ProtocolError when a known type lacks a required field or has a wrong JSON type."""
    for name, types in REQUIRED_FIELDS.get(msg_type, {}).items():
        if name not in fields:
            raise ProtocolError(f"protocol message '{msg_type}' lacks the field '{name}'")
        value = fields[name]
        if isinstance(value, bool) and bool not in types:
            raise ProtocolError(f"protocol message '{msg_type}': field '{name}' has the wrong type")
        if not isinstance(value, types):
            raise ProtocolError(f"protocol message '{msg_type}': field '{name}' has the wrong type")
    if msg_type == DONE and fields["status"] not in DONE_STATUSES:
        raise ProtocolError(f"protocol message 'done': unknown status {fields['status']!r}")


def _jsonable(value: Any) -> Any:
    """Turn NaN/inf into None so every line is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def make_message(msg_type: str, t: float | None = None, **fields: Any) -> Message:
    """Build and validate a message of a known type."""
    if msg_type not in REQUIRED_FIELDS:
        raise ProtocolError(f"unknown protocol message type {msg_type!r}")
    fields = _jsonable(fields)
    _check_fields(msg_type, fields)
    return Message(type=msg_type, t=None if t is None else round(float(t), 3), fields=fields)


def encode_line(message: Message) -> str:
    """One message as a single line of compact JSON, without the trailing newline."""
    return json.dumps(message.to_dict(), separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def encode(msg_type: str, t: float | None = None, **fields: Any) -> str:
    """Shortcut: ``encode_line(make_message(msg_type, t, **fields))``."""
    return encode_line(make_message(msg_type, t, **fields))


def cancel_line() -> str:
    """The line the add-on writes to the engine's stdin to cancel (no trailing newline)."""
    return encode_line(Message(type=CANCEL))


def _parse_object(line: str | bytes) -> dict[str, Any]:
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    text = line.strip()
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise ProtocolError(f"not a protocol line (invalid JSON): {text[:80]!r}") from exc
    if not isinstance(obj, dict):
        raise ProtocolError(f"not a protocol line (not a JSON object): {text[:80]!r}")
    return obj


def decode_line(line: str | bytes, *, require_v: bool = True) -> Message:
    """Parse one line into a Message.

    Raises ProtocolVersionError for another ``v`` and ProtocolError for anything else invalid.
    ``require_v=False`` accepts a message without ``v`` (the engine accepts a bare
    ``{"type": "cancel"}`` on stdin).
    """
    obj = _parse_object(line)
    version = obj.pop("v", None if not require_v else ...)
    if version is ...:
        raise ProtocolError("protocol line lacks the version field 'v'")
    if version is not None and version != PROTOCOL_VERSION:
        raise ProtocolVersionError(
            f"engine speaks protocol v{version}, this add-on speaks v{PROTOCOL_VERSION}: "
            "install matching versions of the add-on and the engine")
    msg_type = obj.pop("type", None)
    if not isinstance(msg_type, str):
        raise ProtocolError("protocol line lacks a string 'type'")
    t = obj.pop("t", None)
    if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float))):
        raise ProtocolError("protocol line has a non-numeric 't'")
    _check_fields(msg_type, obj)
    return Message(type=msg_type, t=t, fields=obj, v=PROTOCOL_VERSION)


def is_cancel(line: str | bytes) -> bool:
    """True when a stdin line asks the engine to cancel (``{"type": "cancel"}``, ``v`` optional)."""
    try:
        return decode_line(line, require_v=False).type == CANCEL
    except ProtocolError:
        return False


def check_transcript(messages: list[Message], require_result: bool = True) -> None:
    """Check the ordering rules of a whole engine transcript.

    ``hello`` first, ``done`` last and exactly once, ``result`` exactly with ``done ok`` (only
    with it when ``require_result`` is False, as for ``doctor``), ``error`` exactly with
    ``done error``, and stage indices strictly increasing. Raises ProtocolError.
    """
    if not messages or messages[0].type != HELLO:
        raise ProtocolError("transcript must start with 'hello'")
    dones = [m for m in messages if m.type == DONE]
    if len(dones) != 1 or messages[-1].type != DONE:
        raise ProtocolError("transcript must end with exactly one 'done'")
    status = dones[0]["status"]
    types = [m.type for m in messages]
    if (RESULT in types and status != "ok") or (require_result and status == "ok" and RESULT not in types):
        raise ProtocolError("'result' is sent exactly when the run ends 'ok'")
    if (ERROR in types) != (status == "error"):
        raise ProtocolError("'error' is sent exactly when the run ends 'error'")
    indices = [m["index"] for m in messages if m.type == STAGE]
    if any(b <= a for a, b in zip(indices, indices[1:])):
        raise ProtocolError("stage indices must increase")
