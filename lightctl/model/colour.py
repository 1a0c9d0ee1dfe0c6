"""Colours in scenes, and how each channel's luminaires take them.

A rule may give a colour as a name (``red``, ``gold``, ``warm-white``...), ``#RRGGBB``, ``{rgb: [r, g, b]}``
or ``{cct_k: 3000}``. Mapped per channel capability:

* RGB luminaires take RGB; a colour temperature becomes the RGB of a black body at that temperature;
* tunable-white (CCT) luminaires take a colour temperature; an RGB colour becomes its correlated
  colour temperature (McCamy's approximation), clamped to what tunable white can do;
* luminaires without colour take the level only.
"""

from __future__ import annotations

import math
import re
from typing import Literal

from lightctl.model.values import Colour

NAMED: dict[str, Colour] = {
    "red": Colour(rgb=(255, 0, 0)),
    "china-red": Colour(rgb=(222, 41, 16)),
    "gold": Colour(rgb=(255, 184, 28)),
    "orange": Colour(rgb=(255, 120, 0)),
    "blue": Colour(rgb=(0, 80, 255)),
    "cyan": Colour(rgb=(0, 200, 255)),
    "green": Colour(rgb=(0, 200, 60)),
    "white": Colour(cct_k=4000),
    "warm-white": Colour(cct_k=2700),
    "neutral-white": Colour(cct_k=4000),
    "cool-white": Colour(cct_k=6000),
}
CCT_RANGE_K = (1800, 6500)
"""What tunable-white luminaires commonly reach."""


class ColourError(ValueError):
    pass


def parse_colour(value: object) -> Colour:
    """A colour as written in config, or ColourError saying what forms are accepted."""
    if isinstance(value, Colour):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in NAMED:
            return NAMED[text]
        if re.fullmatch(r"#[0-9a-f]{6}", text):
            return Colour(rgb=(int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16)))
        raise ColourError(f"unknown colour {value!r}: use a name ({', '.join(sorted(NAMED))}), #RRGGBB, {{rgb: [r, g, b]}} or {{cct_k: K}}")
    if isinstance(value, dict):
        if set(value) == {"rgb"}:
            rgb = value["rgb"]
            if isinstance(rgb, list | tuple) and len(rgb) == 3 and all(isinstance(c, int) and 0 <= c <= 255 for c in rgb):
                return Colour(rgb=(rgb[0], rgb[1], rgb[2]))
            raise ColourError(f"rgb must be three integers 0-255, got {rgb!r}")
        if set(value) == {"cct_k"}:
            cct = value["cct_k"]
            if isinstance(cct, int) and 1000 <= cct <= 20000:
                return Colour(cct_k=cct)
            raise ColourError(f"cct_k must be an integer 1000-20000 kelvin, got {cct!r}")
    raise ColourError(f"bad colour {value!r}: use a name, #RRGGBB, {{rgb: [r, g, b]}} or {{cct_k: K}}")


def kelvin_to_rgb(kelvin: int) -> tuple[int, int, int]:
    """Black-body colour of a temperature (Tanner Helland's fit of the CIE data, 1000-40000 K)."""
    t = max(1000, min(40000, kelvin)) / 100.0
    if t <= 66:
        red = 255.0
        green = 99.4708025861 * math.log(t) - 161.1195681661
        blue = 0.0 if t <= 19 else 138.5177312231 * math.log(t - 10) - 305.0447927307
    else:
        red = 329.698727446 * (t - 60) ** -0.1332047592
        green = 288.1221695283 * (t - 60) ** -0.0755148492
        blue = 255.0
    return (_clamp8(red), _clamp8(green), _clamp8(blue))


def rgb_to_kelvin(rgb: tuple[int, int, int]) -> int:
    """Correlated colour temperature of an sRGB colour (McCamy 1992), clamped to CCT_RANGE_K."""

    def linear(c: int) -> float:
        v = c / 255.0
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb)
    x_ = 0.4124 * r + 0.3576 * g + 0.1805 * b
    y_ = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z_ = 0.0193 * r + 0.1192 * g + 0.9505 * b
    total = x_ + y_ + z_
    if total <= 0:
        return CCT_RANGE_K[0]
    x, y = x_ / total, y_ / total
    n = (x - 0.3320) / (0.1858 - y) if y != 0.1858 else 0.0
    cct = 449.0 * n**3 + 3525.0 * n**2 + 6823.3 * n + 5520.33
    return int(max(CCT_RANGE_K[0], min(CCT_RANGE_K[1], round(cct))))


def for_capability(colour: Colour | None, capability: Literal["none", "cct", "rgb"]) -> Colour | None:
    """The colour a channel with this capability is sent."""
    if colour is None or capability == "none":
        return None
    if capability == "rgb":
        return colour if colour.rgb is not None else Colour(rgb=kelvin_to_rgb(colour.cct_k or 4000))
    if colour.cct_k is not None:
        return Colour(cct_k=max(CCT_RANGE_K[0], min(CCT_RANGE_K[1], colour.cct_k)))
    assert colour.rgb is not None
    return Colour(cct_k=rgb_to_kelvin(colour.rgb))


def _clamp8(value: float) -> int:
    return int(max(0.0, min(255.0, round(value))))
