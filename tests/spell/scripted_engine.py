"""A test engine: the real HF engine on the tiny random model, with the role outputs rewritten.

A random 3M-parameter model never writes a closed JSON record or "The correct answer is X", so a
step on it alone never reaches the update. This wrapper keeps the real generation (seeds, weights,
token streams) and lets the sampled tokens decide which canned output each sample gets: the
questioner writes one of the task's records (a fenced json block), a responder answers right when the
sum of its sampled token ids is even, a verifier judges right except when that sum is a multiple of 5.
So rewards vary, every role trains, and anything that changes the model or the seeds changes the
outputs. Prompts of both styles (release, small) are recognised.
"""

from __future__ import annotations

import json

from spell.engines.base import Completion

RECORDS = {
    "doc_general_qa": {"question": "Which town did the ferry serve?", "answer": "Harrowmere"},
    "doc_mc": {"question": "Who built the bridge?", "options": {"A": "Tobias", "B": "Cecil", "C": "Hector", "D": "Ida"}, "answer": "B"},
    "docmath_qa": {"question": "How much did revenue grow, in millions?", "answer": 42},
}
RIGHT = {"doc_general_qa": "Harrowmere", "doc_mc": "(B)", "docmath_qa": "42"}
WRONG = {"doc_general_qa": "Tollbury", "doc_mc": "(D)", "docmath_qa": "17"}


def role_of(prompt: str) -> tuple[str, str]:
    """(role, task) of a prompt in either prompt style (spell/prompt_styles)."""
    if "You write exam questions" in prompt or "We are building a benchmark" in prompt:
        task = "doc_mc" if "multiple-choice" in prompt else "docmath_qa" if "numerical" in prompt else "doc_general_qa"
        return "questioner", task
    if "Judge whether a candidate answer" in prompt or "checking whether two answers are the same" in prompt:
        return "verifier", ""
    task = "doc_mc" if "Choices:" in prompt else "docmath_qa" if "Therefore, the answer is" in prompt else "doc_general_qa"
    empty = "<documents>\nEmpty\n</documents>" in prompt or "<text>\nEmpty\n</text>" in prompt
    return ("grounding" if empty else "responder"), task


def candidate_of(prompt: str) -> str:
    """The responder's answer as the verifier prompt shows it."""
    for marker in ("Candidate answer: ", "Answer 1: "):
        if marker in prompt:
            return prompt.split(marker, 1)[1].split("\n", 1)[0].strip()
    return ""


class ScriptedEngine:
    def __init__(self, inner, tokenizer):
        self.inner = inner
        self.tokenizer = tokenizer
        self.calls = 0

    def generate(self, prompts, n, sampling, grammars=None, progress=None, seeds=None):
        # The outputs are rewritten below, so the grammars (if any) are not decoded under.
        self.calls += 1
        out = self.inner.generate(prompts, n, sampling, progress=progress, seeds=seeds)
        result = []
        for prompt_ids, group in zip(prompts, out):
            role, task = role_of(self.tokenizer.decode(prompt_ids))
            prompt = self.tokenizer.decode(prompt_ids)
            result.append([self._rewrite(role, task, c, prompt) for c in group])
        return result

    def _rewrite(self, role: str, task: str, c: Completion, prompt: str) -> Completion:
        even = sum(c.token_ids) % 2 == 0
        if role == "questioner":
            # A fenced json block after some reasoning: what both the strict (release) and the
            # lenient reading accept.
            text = "I combine the documents.\n```json\n" + json.dumps(RECORDS[task]) + "\n```"
        elif role == "grounding":
            text = f"The correct answer is {WRONG[task]}"
        elif role == "responder":
            ending = "Therefore, the answer is" if task == "docmath_qa" else "The correct answer is"
            text = f"{ending} {(RIGHT if even else WRONG)[task]}"
        else:
            # Mostly right (YES for a right candidate), wrong when the token sum is a multiple of 5.
            right = candidate_of(prompt) in {a.strip("()") for a in RIGHT.values()}
            noisy = sum(c.token_ids) % 5 == 0
            text = json.dumps({"explanation": "compared", "decision": "YES" if right != noisy else "NO"})
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"] + [self.inner.stop_token_ids[0]]
        logprobs = (list(c.logprobs) + [-2.0] * len(ids))[: len(ids)]
        return Completion(text, ids, logprobs, "stop", c.prompt_tokens)

    def sync_weights(self, state_dict):
        self.inner.sync_weights(state_dict)

    def close(self):
        self.inner.close()
