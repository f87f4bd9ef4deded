"""Label names: the rule every label follows (it becomes a folder name), and the "no gesture" label."""

from __future__ import annotations

import re

from pipeline.errors import UserError

#: The label of a hand that makes none of the gestures: a model that has it never shows it as a gesture.
NONE_LABEL = "none"
_BAD_LABEL = re.compile(r'[/\\<>:"|?*\x00-\x1f]')


def check_label(name: str) -> str:
    """Return ``name`` if it is a safe label (it becomes a folder name); else raise :class:`UserError`."""
    if not name or not name.strip():
        raise UserError("empty label name; give each label a name such as 'fist' or 'open_palm'")
    if name != name.strip() or name.startswith(".") or _BAD_LABEL.search(name) or len(name) > 64:
        raise UserError(
            f"bad label name {name!r}: labels become folder names, so use letters, digits, '-' and '_' "
            "(no slashes, no leading dot, at most 64 characters)"
        )
    return name
