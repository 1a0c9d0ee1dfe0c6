"""Selectors name a set of channels: ``*``, ``district:渝中``, ``site:chaotianmen-bridge``,
``tag:confluence``, ``kind:decoration``, ``controller:ctm-c01``, ``channel:ctm-c01/c3``,
``protocol:modbus``. Terms separated by ``,`` are united; a term written ``!term`` is taken away
from the union of the others (or from ``*`` when it stands alone):
``tag:bridge, tag:confluence, !site:dongshuimen-bridge``.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

K = TypeVar("K")

SELECTOR_KINDS = ("district", "site", "tag", "kind", "controller", "channel", "protocol")


class SelectorError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Term:
    kind: str  # one of SELECTOR_KINDS, or "*"
    value: str
    exclude: bool = False


def parse(selector: str) -> tuple[Term, ...]:
    terms = []
    for raw in selector.split(","):
        text = raw.strip()
        if not text:
            raise SelectorError(f"empty term in selector {selector!r}")
        exclude = text.startswith("!")
        text = text[1:].strip() if exclude else text
        if text == "*":
            terms.append(Term("*", "*", exclude))
            continue
        kind, sep, value = text.partition(":")
        kind, value = kind.strip(), value.strip()
        if not sep or kind not in SELECTOR_KINDS or not value:
            raise SelectorError(
                f"bad selector term {text!r} in {selector!r}: expected '*' or KIND:VALUE with KIND one of "
                + ", ".join(SELECTOR_KINDS)
            )
        terms.append(Term(kind, value, exclude))
    return tuple(terms)


def evaluate(
    selector: str, everything: frozenset[K], index: Mapping[str, Mapping[str, frozenset[K]]]
) -> frozenset[K]:
    """Resolve a selector against ``index[kind][value] -> members``. Unknown values raise
    SelectorError naming the closest known values."""
    include: set[K] = set()
    exclude: set[K] = set()
    has_include = False
    for term in parse(selector):
        if term.kind == "*":
            members = everything
        else:
            table = index.get(term.kind, {})
            found = table.get(term.value)
            if found is None:
                close = difflib.get_close_matches(term.value, list(table), n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise SelectorError(f"unknown {term.kind} {term.value!r} in selector {selector!r}{hint}")
            members = found
        if term.exclude:
            exclude |= members
        else:
            has_include = True
            include |= members
    return frozenset((include if has_include else set(everything)) - exclude)
