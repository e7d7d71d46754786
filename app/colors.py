"""Class colours: each class gets one when it is made and keeps it, so a class looks the same in its card, the
prediction bars, the live page and the confusion matrix, and renaming or deleting another class changes nothing.

The palette is Okabe-Ito's colour-blind-safe set, then a few more hues; the light ones are darkened so that
each has at least WCAG AA contrast (4.5:1) with white text on a badge or a bar label (tests/test_colors.py).
"""

from __future__ import annotations

from collections.abc import Iterable

PALETTE = (
    "#0072B2",  # blue
    "#B34E00",  # vermilion, darkened
    "#007A59",  # bluish green, darkened
    "#A8527F",  # reddish purple, darkened
    "#8C6D00",  # dark yellow (Okabe-Ito's yellow is too light for white text)
    "#56789A",  # slate
    "#7B4FA0",  # purple
    "#A0522D",  # sienna
    "#2E7D32",  # green
    "#C2185B",  # pink
    "#00796B",  # teal
    "#5D4037",  # brown
)


def next_color(taken: Iterable[str | None]) -> str:
    """The first palette colour no class of the project uses; once all are taken, the least used one."""
    used = [c for c in taken if c]
    for color in PALETTE:
        if color not in used:
            return color
    return min(PALETTE, key=used.count)
