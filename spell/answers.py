"""Answer text helpers: SQuAD normalisation, `\\boxed{}` extraction and a real number parser.

Model output is never evaluated: numbers are read with regular expressions and `float()`.
"""

from __future__ import annotations

import math
import re
import string

# ---------------------------------------------------------------------------------------------
# Free text
# ---------------------------------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lowercase, drop punctuation and the articles a/an/the, fold spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def sub_em_strict(prediction: str, reference: str) -> float:
    """Cover exact match: 1 when the normalised reference occurs in the normalised prediction."""
    pred = normalize_answer(prediction)
    ref = normalize_answer(reference)
    if not pred or not ref:
        return 0.0
    return 1.0 if ref in pred else 0.0


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (or `\\fbox{...}`), braces balanced; None if absent."""
    start = max(text.rfind("\\boxed{"), text.rfind("\\fbox{"))
    if start < 0:
        return None
    i = text.index("{", start) + 1
    depth = 1
    for j in range(i, len(text)):
        ch = text[j]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[i:j]
    return None  # unbalanced: the box never closed


def after_last(text: str, marker: str) -> str | None:
    """Text after the last occurrence of `marker` (case-insensitive), or None."""
    pos = text.lower().rfind(marker.lower())
    if pos < 0:
        return None
    return text[pos + len(marker) :]


# ---------------------------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------------------------

_SCALE_WORDS = re.compile(
    r"\b(thousands?|millions?|billions?|trillions?|mn|bn|k|m|b)\b\.?", re.IGNORECASE
)
_CURRENCY = re.compile(
    r"(\\\$|\$|€|£|¥|₹|\b(?:usd|eur|gbp|jpy|rmb|cny|inr|us\$|dollars?|euros?|yuan|rupees?)\b)",
    re.IGNORECASE,
)
_THOUSANDS = re.compile(r"(?<=\d)[,\u2009\u202f'](?=\d{3}(?!\d))")
_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{\s*([^{}]*)\}\s*\{\s*([^{}]*)\}")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_FRACTION = re.compile(r"([-+]?\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)")


def clean_number_text(text: str) -> str:
    """Strip what surrounds a number in a report: currency, %, thousands separators, scale words,
    LaTeX wrappers. Unicode minus signs become '-'."""
    t = text.replace("\u2212", "-").replace("\u2013", "-").replace("\u2014", "-")
    t = t.replace("\\%", "").replace("%", "").replace("\\,", "").replace("\\!", "")
    t = re.sub(r"\\(?:text|mathrm|textbf|mathbf)\s*\{([^{}]*)\}", r"\1", t)
    t = t.replace("\\left", "").replace("\\right", "")
    t = _LATEX_FRAC.sub(r"(\1)/(\2)", t)
    t = _CURRENCY.sub("", t)
    t = _THOUSANDS.sub("", t)
    t = _SCALE_WORDS.sub("", t)
    # "- 5" -> "-5" (a sign separated from its number by removed currency: "-$5", "$-5")
    t = re.sub(r"([-+])\s+(?=[\d.])", r"\1", t)
    return t


_RELATION = re.compile(r"=|≈|\\approx|\\simeq")


def _right_hand_side(text: str) -> str:
    """The part after the last '=' or '≈' ("10-4=6" -> "6", "10/3 \\approx 3.33" -> "3.33"): an
    answer written as a calculation is read by its result, as the release reads it."""
    parts = _RELATION.split(text)
    return parts[-1] if len(parts) > 1 and parts[-1].strip() else text


def parse_number(text: str) -> float | None:
    """The first number in `text`, as a finite float, or None.

    Handles "1,234.5", "$1.2 million", "12.5%", "-3", "−3", "\\frac{1}{4}", "3/4", "1e-3", and a
    calculation by its result ("10-4=6" -> 6).
    Scale words are stripped, not applied: matching allows the 1e3/1e6/1e9 conventions.
    """
    if not isinstance(text, str) or not text:
        return None
    t = _right_hand_side(text[:2000])
    t = clean_number_text(t)
    t = t.replace("(", "").replace(")", "")
    frac = _FRACTION.search(t)
    num = _NUMBER.search(t)
    if frac is not None and (num is None or frac.start() <= num.start()):
        try:
            den = float(frac.group(2))
            value = float(frac.group(1)) / den if den != 0 else None
        except (ValueError, OverflowError):
            value = None
        if value is not None and math.isfinite(value):
            return value
    if num is None:
        return None
    try:
        value = float(num.group(0))
    except (ValueError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def _within(pred: float, ref: float, rel_tol: float) -> bool:
    return abs(pred - ref) <= rel_tol * abs(ref)


def _round_up(x: float, decimals: int = 3) -> float:
    factor = 10.0**decimals
    return math.ceil(x * factor - 1e-9) / factor


SCALES = (100.0, 1e3, 1e6, 1e9)


def numbers_match(pred: float, ref: float, rel_tol: float = 0.0015) -> bool:
    """DocMath rule with the sign kept: equal within `rel_tol` relative error, or after scaling
    either side by 100 / 1e3 / 1e6 / 1e9, or after rounding both up to 3 decimals."""
    if not (math.isfinite(pred) and math.isfinite(ref)):
        return False
    if ref == 0:
        return pred == 0
    if (pred > 0) != (ref > 0):  # also rejects pred == 0 against a non-zero reference
        return False
    if _within(pred, ref, rel_tol):
        return True
    for s in SCALES:
        if _within(pred * s, ref, rel_tol) or _within(pred, ref * s, rel_tol):
            return True
    return _round_up(pred) == _round_up(ref)
