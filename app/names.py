"""Names people give things: one normal form, so names that only look alike are the same name."""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")


def normalize_name(value: str) -> str:
    """NFKC (full-width and compatibility forms fold to plain ones), invisible format characters removed
    (zero-width space and joiners, BOM, soft hyphen, bidi controls), runs of white space made one space.

    Raises ValueError for what no name should hold: control characters (NUL, escape...), lone surrogates,
    nothing visible left.
    """
    value = unicodedata.normalize("NFKC", value)
    # Format characters (Cf) print as nothing; left in, "d\u200bup" would be a second "dup".
    value = unicodedata.normalize("NFKC", "".join(ch for ch in value if unicodedata.category(ch) != "Cf"))
    value = value.strip()  # a pasted name's trailing newline is not a control character in it
    for ch in value:
        category = unicodedata.category(ch)
        if category == "Cc":
            raise ValueError(f"must not contain control characters (found U+{ord(ch):04X})")
        if category == "Cs":  # a lone surrogate from a JSON "\ud800": not text, and no database stores it
            raise ValueError(f"must be valid Unicode text (found a lone surrogate U+{ord(ch):04X})")
    value = _SPACES.sub(" ", value)
    if not value:
        raise ValueError("must not be blank")
    return value


def name_key(name: str) -> str:
    """What two names are compared by: case-insensitive, for every script (casefold, not lower)."""
    return unicodedata.normalize("NFKC", name.casefold())
