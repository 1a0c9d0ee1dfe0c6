"""The API's OpenAPI description (kept beside the routes in web/app.py; a test checks they agree)."""

from __future__ import annotations

from typing import Any

_JSON = {"application/json": {"schema": {"type": "object"}}}
_OK = {"200": {"description": "OK", "content": _JSON}}
_CHANGE = {
    **_OK,
    "400": {"description": "refused: the message says what is wrong", "content": _JSON},
    "401": {"description": "API token missing or wrong", "content": _JSON},
    "503": {"description": "the store could not write the records (its health is in /api/v1/status)", "content": _JSON},
}



def _path(name: str, kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": kind}}


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "lightctl", "version": "1", "description": "Two Rivers Four Banks lighting control API"},
    "components": {"securitySchemes": {"token": {"type": "http", "scheme": "bearer"}}},
    "paths": {
        "/api/v1/status": {"get": {"summary": "Daemon, controllers, overrides and the store's health", "responses": _OK}},
        "/api/v1/controllers/{controller_id}": {
            "get": {
                "summary": "One controller: desired, confirmed and reported state per channel",
                "parameters": [{"name": "controller_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {**_OK, "404": {"description": "unknown controller", "content": _JSON}},
            }
        },
        "/api/v1/scenes": {"get": {"summary": "Scenes", "responses": _OK}},
        "/api/v1/scenes/{scene_id}/apply": {
            "post": {
                "summary": "The one switch: a scene on a selector now, confirmed by read-back",
                "security": [{"token": []}],
                "parameters": [{"name": "scene_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "target": {"type": "string", "default": "*"},
                                    "until": {"type": "string", "default": "next", "description": "'next' scheduled transition, 'none', HH:MM or ISO 8601"},
                                },
                            }
                        }
                    }
                },
                "responses": _CHANGE,
            }
        },
        "/api/v1/overrides/{override_id}": {
            "delete": {
                "summary": "End an override; the schedule takes over again",
                "security": [{"token": []}],
                "parameters": [{"name": "override_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                "responses": _CHANGE,
            }
        },
        "/api/v1/commands": {"get": {"summary": "Audit of commands, newest first", "responses": _OK}},
        "/api/v1/commands/{command_id}": {
            "get": {
                "summary": "One command with every controller's result",
                "parameters": [{"name": "command_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                "responses": {**_OK, "404": {"description": "no such command", "content": _JSON}},
            }
        },
        "/api/v1/metrics": {"get": {"summary": "Control rate, LED share, lighting-on rate, power, energy", "responses": _OK}},
        "/api/v1/scenes/{scene_id}": {
            "get": {"summary": "A scene: rules, base, channels reached", "parameters": [_path("scene_id")], "responses": _OK}
        },
        "/api/v1/scenes/{scene_id}/explain": {
            "get": {
                "summary": "The operations a scene compiles to, per controller, without sending",
                "parameters": [_path("scene_id"), {"name": "target", "in": "query", "schema": {"type": "string"}}],
                "responses": _OK,
            }
        },
        "/api/v1/shows": {"get": {"summary": "Configured light shows", "responses": _OK}},
        "/api/v1/shows/{show_id}/start": {
            "post": {"summary": "Start a show", "security": [{"token": []}], "parameters": [_path("show_id")], "responses": _CHANGE}
        },
        "/api/v1/shows/stop": {"post": {"summary": "Stop the running show", "security": [{"token": []}], "responses": _CHANGE}},
        "/api/v1/shows/status": {"get": {"summary": "The running (or last) show and its progress", "responses": _OK}},
        "/api/v1/handback": {
            "post": {
                "summary": "Hand a selector's channels back to their owners' control (BACnet: the centre's priority "
                "relinquished), confirmed by read-back; any later scene on them takes them back",
                "security": [{"token": []}],
                "requestBody": {"content": {"application/json": {"schema": {"type": "object", "required": ["target"], "properties": {
                    "target": {"type": "string"},
                    "until": {"type": "string", "default": "next", "description": "'next' scheduled transition, 'none', HH:MM or ISO 8601"}}}}}},
                "responses": _CHANGE,
            }
        },
        "/api/v1/curtailments": {
            "get": {"summary": "Curtailments in force, with what they shed", "responses": _OK},
            "post": {
                "summary": "Emergency load shedding on a selector: off (level 0) or dimmed to at most level %",
                "security": [{"token": []}],
                "requestBody": {"content": {"application/json": {"schema": {"type": "object", "required": ["target"], "properties": {
                    "target": {"type": "string"}, "level": {"type": "number", "default": 0}, "until": {"type": "string"}}}}}},
                "responses": _CHANGE,
            },
            "delete": {"summary": "Restore: end every curtailment", "security": [{"token": []}], "responses": _CHANGE},
        },
        "/api/v1/curtailments/{curtailment_id}": {
            "delete": {"summary": "Restore one curtailment", "security": [{"token": []}], "parameters": [_path("curtailment_id", "integer")], "responses": _CHANGE}
        },
        "/api/v1/openapi.json": {"get": {"summary": "This document", "responses": _OK}},
        "/api/v1/ws": {"get": {"summary": "WebSocket: state, link, command events", "responses": {"101": {"description": "upgrade"}}}},
    },
}
