"""Label names: the rule every label follows (it becomes a folder name), and the "no gesture" label."""

from __future__ import annotations

import re

from pipeline.errors import UserError

#: The label of a hand that makes none of the gestures: a model that has it never shows it as a gesture.
NONE_LABEL = "none"
#: What a label may be: it becomes a folder name and is drawn on the video with OpenCV's font, which
#: has ASCII glyphs only (a unicode label would be drawn as ???).
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def check_label(name: str) -> str:
    """Return ``name`` if it is a label this package can store and draw; else raise :class:`UserError`."""
    if not name or not name.strip():
        raise UserError("empty label name; give each label a name such as 'fist' or 'open_palm'")
    if not _LABEL.match(name):
        raise UserError(
            f"bad label name {name!r}: use 1 to 64 ASCII letters, digits, '-' and '_', starting with a letter or digit "
            "(labels become folder names, and are drawn with a font that has no other characters)"
        )
    return name
