"""The console's messages (web/console/src/i18n): both languages have the same keys, none empty, and
every key the sources name exists; none is left unused. (Keys built at run time, ``nav.${page}``,
are checked by walking every page in the browser tests; here their prefix must exist.)"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.conftest import ROOT

CONSOLE = ROOT / "web" / "console" / "src"
LITERAL = re.compile(r"""\b(?:t|tm|te)\(\s*(["'`])([a-zA-Z_][\w.]*)\1""")
DYNAMIC = re.compile(r"""\b(?:t|tm|te)\(\s*`([a-zA-Z_][\w.]*)\.\$\{""")
KNOWN = re.compile(r"""\btKnown\(\s*["']([a-zA-Z_]\w*)["'][^)]*?["']([a-zA-Z_]\w*)["']\s*\)""")


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def messages(language: str) -> dict[str, Any]:
    return flatten(json.loads((CONSOLE / "i18n" / f"{language}.json").read_text(encoding="utf-8")))


def sources() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(CONSOLE.rglob("*")) if p.suffix in (".vue", ".ts"))


def test_both_languages_have_the_same_keys_and_no_empty_string() -> None:
    zh, en = messages("zh"), messages("en")
    assert zh.keys() == en.keys(), {"only zh": sorted(zh.keys() - en.keys()), "only en": sorted(en.keys() - zh.keys())}
    for language, table in (("zh", zh), ("en", en)):
        empty = [k for k, v in table.items() if v in ("", [])]
        assert not empty, f"{language}: empty messages {empty}"


def test_every_key_the_sources_name_exists_and_none_is_unused() -> None:
    zh = messages("zh")
    text = sources()
    literal = {m.group(2) for m in LITERAL.finditer(text)}
    dynamic = {m.group(1) for m in DYNAMIC.finditer(text)}
    known = [(m.group(1), m.group(2)) for m in KNOWN.finditer(text)]
    assert literal and dynamic and known, "the patterns still find the sources' keys"
    missing = sorted(k for k in literal if k not in zh and not any(p.startswith(k + ".") for p in zh))
    assert not missing, f"keys named in the sources but in no message file: {missing}"
    for prefix in dynamic | {p for p, _ in known}:
        assert any(k.startswith(prefix + ".") for k in zh), f"no messages under {prefix!r}"
    for prefix, fallback in known:
        assert f"{prefix}.{fallback}" in zh, f"tKnown's fallback {prefix}.{fallback} is missing"
    prefixes = dynamic | {p for p, _ in known}
    used = {k for k in zh if k in literal or any(k.startswith(p + ".") for p in prefixes)
            or any(k.startswith(name + ".") for name in literal)}
    assert not sorted(set(zh) - used), f"messages no source names: {sorted(set(zh) - used)}"
