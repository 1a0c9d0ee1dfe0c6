"""JSON schemas of the fault and work-order routes' answers (web/faults.py), for the OpenAPI
document and the fuzzing test that checks every response against them."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

TIME: Schema = {"type": ["string", "null"], "description": "ISO 8601 in the installation's zone"}
NAMED: Schema = {
    "anyOf": [{"type": "object", "required": ["id", "name"], "properties": {"id": {"type": "string"}, "name": {"type": "string"}}},
              {"type": "null"}]
}
LOCATION: Schema = {
    "type": "object",
    "required": ["district", "site", "controller", "channel", "lat", "lon"],
    "properties": {
        "district": NAMED, "site": NAMED, "controller": NAMED, "channel": NAMED,
        "lat": {"type": ["number", "null"]}, "lon": {"type": ["number", "null"]},
    },
}
SEVERITY: Schema = {"enum": ["emergency", "serious", "ordinary"]}

FAULT: Schema = {
    "type": "object",
    "required": ["id", "kind", "label", "severity", "status", "alarm", "location", "evidence", "first_seen", "last_seen",
                 "occurrences", "chattering", "suppressed_by", "acknowledged", "shelved", "cleared_at", "work_orders"],
    "properties": {
        "id": {"type": "integer"},
        "kind": {"type": "string"},
        "label": {"type": "object", "properties": {"zh": {"type": "string"}, "en": {"type": "string"}}},
        "severity": SEVERITY,
        "status": {"enum": ["unacknowledged", "acknowledged", "shelved", "suppressed", "cleared"]},
        "alarm": {"type": "boolean"},
        "location": LOCATION,
        "evidence": {"type": "string"},
        "first_seen": TIME,
        "last_seen": TIME,
        "occurrences": {"type": "integer"},
        "chattering": {"type": "boolean"},
        "suppressed_by": {"type": ["integer", "null"]},
        "acknowledged": {"anyOf": [{"type": "object", "properties": {"at": TIME, "by": {"type": ["string", "null"]}}}, {"type": "null"}]},
        "shelved": {"anyOf": [{"type": "object", "properties": {"until": TIME, "by": {"type": ["string", "null"]},
                                                                "reason": {"type": ["string", "null"]}}}, {"type": "null"}]},
        "cleared_at": TIME,
        "cleared_how": {"type": ["string", "null"]},
        "lighting": {"type": "string"},
        "luminaires": {"type": "integer"},
        "work_orders": {"type": "array", "items": {"type": "integer"}},
        "events": {"type": "array", "items": {"type": "object"}},
        "children": {"type": "array", "items": {"type": "integer"}},
    },
}
FAULT_LIST: Schema = {
    "type": "object",
    "required": ["faults", "count", "alarms"],
    "properties": {"faults": {"type": "array", "items": FAULT}, "count": {"type": "integer"}, "alarms": {"type": "integer"}},
}

WORK_ORDER: Schema = {
    "type": "object",
    "required": ["id", "source", "title", "severity", "state", "location", "crew", "filed", "due", "overdue", "faults", "steps"],
    "properties": {
        "id": {"type": "integer"},
        "source": {"enum": ["fault", "hotline", "manual"]},
        "reference": {"type": ["string", "null"]},
        "title": {"type": "string"},
        "description": {"type": ["string", "null"]},
        "severity": SEVERITY,
        "state": {"enum": ["filed", "dispatched", "handling", "handled", "verified", "closed"]},
        "location": LOCATION,
        "lighting": {"type": ["string", "null"]},
        "crew": {"type": ["string", "null"]},
        "filed": {"type": "object", "properties": {"at": TIME, "by": {"type": "string"}}},
        "due": {"type": "object", "required": ["at", "basis", "estimated", "deadline"],
                "properties": {"at": TIME, "basis": {"type": "string"}, "estimated": {"type": "boolean"}, "deadline": TIME}},
        "overdue": {"type": "boolean"},
        "faults": {"type": "array", "items": {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}}},
        "steps": {"type": "array", "items": {"type": "object", "required": ["step", "at", "person"]}},
    },
}
WORK_ORDER_LIST: Schema = {
    "type": "object",
    "required": ["work_orders", "count"],
    "properties": {"work_orders": {"type": "array", "items": WORK_ORDER}, "count": {"type": "integer"},
                   "overdue": {"type": "integer"}, "crew": {"type": "string"}},
}
CREWS: Schema = {
    "type": "object",
    "required": ["crews"],
    "properties": {"crews": {"type": "array", "items": {"type": "object", "required": ["id", "name", "districts", "open", "overdue"]}}},
}
PHOTO: Schema = {
    "type": "object",
    "required": ["sha256", "bytes", "content_type"],
    "properties": {"sha256": {"type": "string"}, "bytes": {"type": "integer"}, "content_type": {"type": "string"}},
}
LAMPS: Schema = {
    "type": "object",
    "required": ["channels", "replacement_due_ratio"],
    "properties": {"channels": {"type": "array", "items": {"type": "object", "required": ["controller", "channel", "hours", "due"]}},
                   "replacement_due_ratio": {"type": "number"}},
}
RELAMPED: Schema = {
    "type": "object",
    "required": ["controller", "channel", "hours_before"],
    "properties": {"controller": {"type": "string"}, "channel": {"type": "string"}, "hours_before": {"type": "number"}},
}
OUTBOX: Schema = {
    "type": "object",
    "required": ["summary", "deliveries"],
    "properties": {"summary": {"type": "object", "additionalProperties": {"type": "integer"}},
                   "deliveries": {"type": "array", "items": {"type": "object"}}},
}
CSV: Schema = {"type": "string"}
