"""Percent <-> DALI arc power, fade time codes and colour temperature (IEC 62386-102, -209).

The standard's dimming curve is logarithmic: arc power level ``n`` (1..254) gives
``10 ** ((n - 1) / (253 / 3) - 1)`` percent of full light output, so level 1 is 0.1 % and 254 is
100 %; level 0 is off and 255 (MASK) means "no change". Adjacent levels differ by a factor
``10 ** (3 / 253)`` (2.77 %), which near full output is 2.7 percentage points: rounding a percentage
to the nearest level can be off by up to half of that, :data:`LEVEL_TOLERANCE`.
"""

from __future__ import annotations

import math

ARC_OFF = 0
ARC_MIN = 1
ARC_MAX = 254
MASK = 255
_STEPS_PER_DECADE = 253 / 3

LEVEL_TOLERANCE = 1.4
"""Worst-case error, in percentage points, of a percentage round-tripped through an arc level."""


def arc_to_percent(arc: int) -> float:
    if arc <= ARC_OFF:
        return 0.0
    if arc >= MASK:
        raise ValueError("MASK is not a level")
    return 10 ** ((arc - 1) / _STEPS_PER_DECADE - 1)


def percent_to_arc(percent: float) -> int:
    """Nearest arc level for a percentage; any positive percentage gives at least level 1."""
    if percent <= 0:
        return ARC_OFF
    if percent >= 100:
        return ARC_MAX
    exact = 1 + _STEPS_PER_DECADE * (math.log10(percent) + 1)
    return max(ARC_MIN, min(ARC_MAX, round(exact)))


def fade_time_s(code: int) -> float:
    """Fade time of a FADE TIME code (0..15): 0 means no fade, n gives 0.5 * sqrt(2 ** n) s."""
    if not 0 <= code <= 15:
        raise ValueError("fade time code must be 0..15")
    return 0.0 if code == 0 else 0.5 * math.sqrt(2**code)


def fade_code(seconds: float) -> int:
    """The FADE TIME code nearest to ``seconds`` (on a log scale); 0 for no fade."""
    if seconds < 0.5:
        return 0
    code = round(2 * math.log2(seconds / 0.5))
    return max(1, min(15, code))


def kelvin_to_mirek(kelvin: int) -> int:
    return max(1, min(65534, round(1_000_000 / kelvin)))


def mirek_to_kelvin(mirek: int) -> int:
    return round(1_000_000 / mirek) if mirek > 0 else 0
