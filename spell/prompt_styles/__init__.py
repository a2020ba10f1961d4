"""The wordings of the role prompts, one module per style (`prompts.style` in the run config).

- `release`: worded after the prompts of the SPELL release (Tongyi-Zhiwen/Qwen-Doc, SPELL/verl/
  verl/utils/dataset/prompts.py): long design principles, standalone questions over unlabelled
  documents, harder reasoning types for follow-up questions, a verifier that compares without
  solving. The paper-7b preset.
- `small`: short prompts for small models (cpu-demo), with numbered documents.

Each module builds the user-turn text from already formatted parts; spell/prompts.py is the
public API and picks the module.
"""

from __future__ import annotations

from types import ModuleType

from spell.prompt_styles import release, small

STYLES: dict[str, ModuleType] = {"release": release, "small": small}


def style_module(style: str) -> ModuleType:
    try:
        return STYLES[style]
    except KeyError:
        raise ValueError(f"unknown prompt style {style!r} (choices: {', '.join(STYLES)})") from None
