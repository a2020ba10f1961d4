"""Structured outputs: a random model's output under a JSON schema is JSON that follows it."""

from __future__ import annotations

import json

import jsonschema
import pytest

from spell.engines.base import SamplingParams
from spell.engines.hf import HFEngine
from spell.engines.structured import SchemaCompiler, schema_key
from spell.models import TINY_RANDOM, load_model, prepare_model

VERDICT_SCHEMA = {
    "type": "object",
    "properties": {
        "verdict": {"type": "string", "enum": ["yes", "no"]},
        "score": {"type": "integer", "minimum": 0, "maximum": 9},
        "confident": {"type": "boolean"},
    },
    "required": ["verdict", "score", "confident"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def tiny():
    return load_model(prepare_model(TINY_RANDOM))


def test_random_model_output_follows_the_schema(tiny):
    model, tokenizer = tiny
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Judge the answer."}], add_generation_prompt=True, return_dict=False
    )
    sampling = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=40, seed=3, json_schema=VERDICT_SCHEMA)
    completions = HFEngine(model, tokenizer).generate([prompt], 4, sampling)[0]
    for completion in completions:
        assert completion.finish_reason == "stop"
        record = json.loads(completion.text)
        jsonschema.validate(record, VERDICT_SCHEMA)
        assert list(record) == ["verdict", "score", "confident"]  # schema order
        # Log-probabilities are the unconstrained model's: a near-uniform random model gives
        # every token about log(1/49152) = -10.8, however certain the grammar made it.
        assert all(-14 < lp < -7 for lp in completion.logprobs)

    free = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=40, seed=3)
    unconstrained = HFEngine(model, tokenizer).generate([prompt], 4, free)[0]
    assert not any(_parses(c.text) for c in unconstrained)


def _parses(text: str) -> bool:
    try:
        json.loads(text)
        return True
    except ValueError:
        return False


def test_compiled_grammars_are_cached_by_schema(tiny):
    _, tokenizer = tiny
    compiler = SchemaCompiler(tokenizer)
    first = compiler.compile(VERDICT_SCHEMA)
    assert compiler.compile(json.loads(json.dumps(VERDICT_SCHEMA))) is first
    reordered = {"required": VERDICT_SCHEMA["required"], **{k: v for k, v in VERDICT_SCHEMA.items() if k != "required"}}
    assert schema_key(reordered) != schema_key(VERDICT_SCHEMA)
    assert schema_key({"a": 1, "b": [1, 2]}) == '{"a":1,"b":[1,2]}'


@pytest.mark.parametrize("task", ["doc_general_qa", "doc_mc", "docmath_qa"])
def test_a_capped_role_record_closes_inside_a_short_token_limit(tiny, task):
    """With the free-text fields capped from the token limit (prompts.text_budget), even a random
    model's questioner record and verifier decision end inside 160 tokens as valid JSON, where an
    uncapped string field runs into the limit and the record never closes."""
    from spell import prompts

    model, tokenizer = tiny
    engine = HFEngine(model, tokenizer)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Write a question about the document."}], add_generation_prompt=True, return_dict=False
    )
    budget = prompts.text_budget(160)
    for schema in (prompts.questioner_schema(task, budget), prompts.verifier_schema(budget)):
        sampling = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=160, seed=5, json_schema=schema)
        for completion in engine.generate([prompt], 4, sampling)[0]:
            assert completion.finish_reason == "stop", completion.text[-200:]
            record = json.loads(completion.text, strict=False)  # as spell.parsing reads it
            jsonschema.validate(record, schema)
            if task == "docmath_qa" and "answer" in record:
                assert record["answer"] != 0
    uncapped = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=160, seed=5, json_schema=prompts.verifier_schema())
    assert any(c.finish_reason == "length" for c in engine.generate([prompt], 4, uncapped)[0])


def test_each_prompt_can_have_its_own_grammar_and_forced_tokens_are_marked(tiny):
    model, tokenizer = tiny
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Go."}], add_generation_prompt=True, return_dict=False)
    grammars = ['root ::= "Answer: " ("red" | "blue")', 'root ::= "Decision: YES"', None]
    sampling = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=12, seed=5)

    first, second, free = HFEngine(model, tokenizer).generate([prompt, prompt, prompt], 3, sampling, grammars=grammars)

    assert {c.text for c in first} <= {"Answer: red", "Answer: blue"}
    assert {c.text for c in second} == {"Decision: YES"}
    for c in second:  # one way to write it: every token forced, the stop token too
        assert c.forced == [True] * len(c.token_ids)
    for c in first:
        # "Answer: " is forced, the colour is a choice (its first token at least), the stop forced
        assert c.forced[0] and c.forced[-1] and not all(c.forced)
    assert all(c.forced is None for c in free)  # a free prompt of the same batch stays free
    assert not any(c.text.startswith(("Answer", "Decision")) for c in free)
