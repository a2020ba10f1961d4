"""Text the database can store, the one rule for it.

PostgreSQL's `text` and `jsonb` refuse NUL (U+0000: a model output can hold one, and json.loads
turns `\\u0000` into it), and no UTF-8 column takes a lone surrogate (what json.loads makes of a
stray `\\ud800`). Whatever a training process reports is stored through `storable`: a NUL becomes
U+2400 SYMBOL FOR NULL (a visible mark, so nothing is dropped and the run goes on) and a lone
surrogate U+FFFD. The same rule holds on SQLite, so both databases store the same text.

Input people type is refused instead (the API answers 400 to a NUL): this rule is for what the
system records, where refusing would lose data or wedge a run.
"""

from __future__ import annotations

import re
from typing import Any

NUL_MARK = "\u2400"  # ␀
_SURROGATE = re.compile("[\ud800-\udfff]")


def storable_text(text: str) -> str:
    """`text` with NUL as ␀ and lone surrogates as U+FFFD (unchanged when it holds neither)."""
    if "\x00" in text:
        text = text.replace("\x00", NUL_MARK)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = _SURROGATE.sub("\ufffd", text)
    return text


def storable(value: Any) -> Any:
    """A JSON-like value with every string (dict keys too) made storable by `storable_text`."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {storable_text(k) if isinstance(k, str) else k: storable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [storable(v) for v in value]
    return value
