"""Config problems: each names the file, line and field, and all of them are reported at once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path or '(top level)'}: {self.message}"


class ConfigError(Exception):
    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in the configuration"
        super().__init__(head + ":\n" + "\n".join(f"  {p}" for p in self.problems))


Path_ = tuple[str | int, ...]


def format_path(path: Path_) -> str:
    out = ""
    for part in path:
        if part == "settings":
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class Locator:
    """Maps a field path to a line of the YAML source (ruamel keeps line/column per key and item)."""

    def __init__(self, root: Any) -> None:
        self.root = root

    def line(self, path: Path_) -> int | None:
        node, line = self.root, None
        for part in path:
            if part == "settings":
                continue
            lc = getattr(node, "lc", None)
            try:
                if isinstance(part, int) and isinstance(node, list):
                    if lc is not None:
                        line = lc.item(part)[0] + 1
                    node = node[part]
                elif isinstance(node, Mapping) and part in node:
                    if lc is not None:
                        line = lc.key(part)[0] + 1
                    node = node[part]
                else:
                    break
            except (KeyError, IndexError, TypeError):
                break
        return line


def describe_error(error: Mapping[str, Any]) -> str:
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        return "unknown key (not part of the schema; check its spelling)"
    if error["type"] == "missing":
        return "required key is missing"
    value = error.get("input")
    if error["type"] not in ("model_type", "list_type", "dict_type") and not isinstance(value, Mapping | list):
        message += f" (got {value!r})"
    return message


def pydantic_problems(exc: ValidationError, file: str, locate: Locator, prefix: Path_ = ()) -> list[Problem]:
    problems = []
    for error in exc.errors():
        path = prefix + tuple(error["loc"])
        problems.append(Problem(file, locate.line(path), format_path(path), describe_error(error)))
    return problems


def problem_at(file: str, locate: Locator, path: Path_, message: str) -> Problem:
    return Problem(file, locate.line(path), format_path(path), message)
