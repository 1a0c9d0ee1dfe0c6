"""JSON schemas of the API's answers, for the OpenAPI document (web.routing) and the fuzzing test
that checks every response against its route's schema."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

OBJECT: Schema = {"type": "object"}
OBJECTS: Schema = {"type": "array", "items": OBJECT}
STRING_OR_NULL: Schema = {"type": ["string", "null"]}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


CONTROLLER_RESULT: Schema = {
    "type": "object",
    "required": ["status", "elapsed_s", "operations", "channels"],
    "properties": {
        "status": {"enum": ["confirmed", "unconfirmed", "failed", "sent"]},
        "elapsed_s": {"type": "number"},
        "operations": {"type": "integer"},
        "channels": {"type": "integer"},
        "error": {"type": "string"},
        "error_kind": {"type": "string"},
    },
}

COMMAND_REPORT: Schema = {
    "type": "object",
    "required": ["command_id", "scene", "target", "elapsed_s", "summary", "controllers"],
    "properties": {
        "command_id": {"type": "integer"},
        "scene": {"type": "string"},
        "target": {"type": "string"},
        "elapsed_s": {"type": "number"},
        "summary": {"type": "object", "properties": {k: {"type": "integer"} for k in ("confirmed", "unconfirmed", "failed")}},
        "controllers": {"type": "object", "additionalProperties": CONTROLLER_RESULT},
    },
}

CURTAIL_REPORT: Schema = {
    "type": "object",
    "required": ["curtailment_id", "shed", "command"],
    "properties": {
        "curtailment_id": {"type": "integer"},
        "shed": {"type": "object", "properties": {"channels": {"type": "integer"}, "luminaires": {"type": "integer"}, "kw": {"type": "number"}}},
        "command": COMMAND_REPORT,
    },
}

OVERRIDE_CLEARED: Schema = {
    "type": "object",
    "required": ["cleared", "command"],
    "properties": {"cleared": {"type": "integer"}, "command": nullable(COMMAND_REPORT)},
}

RESTORED: Schema = {
    "type": "object",
    "required": ["restored", "command"],
    "properties": {
        "restored": {"anyOf": [{"const": "all"}, {"type": "array", "items": {"type": "integer"}}]},
        "command": nullable(COMMAND_REPORT),
    },
}

HOLD: Schema = {
    "type": "object",
    "required": ["kind", "id", "target", "user", "until", "blocks", "channels", "controllers", "description"],
    "properties": {
        "kind": {"enum": ["override", "curtail"]},
        "id": {"type": "integer"},
        "scene": STRING_OR_NULL,
        "target": {"type": "string"},
        "user": {"type": "string"},
        "until": STRING_OR_NULL,
        "cap": {"type": ["number", "null"]},
        "blocks": {"type": "boolean"},
        "channels": {"type": "integer"},
        "controllers": {"type": "array", "items": {"type": "string"}},
        "description": {"type": "string"},
    },
}

SHOW_RUN: Schema = {
    "type": "object",
    "required": ["run_id", "show", "user", "status", "started_at", "loop", "loops", "cue", "cues", "controllers", "sent", "failed", "skipped"],
    "properties": {
        "run_id": {"type": "integer"},
        "show": {"type": "string"},
        "user": {"type": "string"},
        "status": {"enum": ["starting", "running", "holding", "done", "stopped", "failed", "interrupted"]},
        "started_at": {"type": "string"},
        "loop": {"type": "integer"},
        "loops": {"type": "integer"},
        "cue": {"type": "integer"},
        "cues": {"type": "integer"},
        "controllers": {"type": "integer"},
        "sent": {"type": "integer"},
        "failed": {"type": "integer"},
        "skipped": {"type": "integer"},
        "held_back": {"type": "array", "items": HOLD},
        "capped": {"type": "array", "items": HOLD},
    },
}

SHOW_STATUS: Schema = {"type": "object", "required": ["run"], "properties": {"run": nullable(SHOW_RUN)}}

SHOW_HELD: Schema = {
    "type": "object",
    "required": ["error", "held_by", "options"],
    "properties": {"error": {"type": "string"}, "held_by": {"type": "array", "items": HOLD}, "options": {"type": "array", "items": {"type": "string"}}},
}
