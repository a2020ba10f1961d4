"""Shared by the spell tests: an xgrammar compiler for SmolLM2's tokenizer (the tiny random model
ships it); tests.support.accepts asks whether a grammar takes a text."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def compiler():
    import xgrammar
    from transformers import AutoTokenizer

    from spell.models import TINY_RANDOM, prepare_model

    tokenizer = AutoTokenizer.from_pretrained(prepare_model(TINY_RANDOM))
    info = xgrammar.TokenizerInfo.from_huggingface(tokenizer, stop_token_ids=[tokenizer.eos_token_id])
    return xgrammar.GrammarCompiler(info), tokenizer.eos_token_id
