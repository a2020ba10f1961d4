"""A whole SPELL step on the tiny random model: metrics and samples with the documented fields."""

from __future__ import annotations

import functools
import re

import pytest
import torch

from spell.config import preset, with_overrides
from spell.data.ingest import CorpusRecord
from spell.engines.hf import HFEngine
from spell.grounded import split_sentences
from spell.loss import policy_loss
from spell.models import TINY_RANDOM, load_model, prepare_model
from spell.rollout import Corpus, derive_seed
from spell.selfplay import SelfPlay
from spell.trainers.base import TrainerSettings
from spell.trainers.torch_trainer import TorchTrainer
from tests.spell.scripted_engine import ScriptedEngine

METRIC_GROUPS = {
    "reward": {"questioner", "responder", "verifier", "rule"},
    "pass_rate": {"responder", "rule", "grounding"},
    "questioner": {"samples", "valid", "parse_rate", "format_error", "ungrounded", "zero_variance", "dropped", "skipped_context"},
    "responder": {"groups", "varied_groups", "keep_ratio", "response_tokens"},
    "verifier": {"judgments", "yes_rate", "agreement_with_rule", "eligible_groups", "format_error_rate"},
    "context_tokens": {"mean", "max"},
    "memory": {"depth_mean", "depth_max"},
    "curriculum": {"stage", "max_context"},
    "train": {"loss", "kl", "entropy", "grad_norm", "tokens"},
    "throughput": {"generated_tokens", "generation_tokens_per_s", "trained_tokens_per_s"},
    "time": {"generation", "logprob", "update", "weight_sync", "total", "outside_model", "outside_model_share"},
    "batch": {"generation_batches", "skipped_clusters", "responder_groups", "questioner_good", "questioner_bad", "verifier_groups", "updated"},
}
SAMPLE_FIELDS = {
    "task", "cluster", "doc_ids", "responder_doc_ids", "context_tokens", "question", "reference", "options",
    "response", "extracted_answer", "votes", "majority", "verdict", "rule_score", "rewards", "memory_depth",
    "curriculum_stage", "questioner_status",
}


SCRIPTED_RECORDS = {
    "structured.grounded": False, "structured.cloze_questions": False, "structured.responder": False,
    "selfplay.question_quality_filter": False,
    "selfplay.verifier_tasks": ["doc_general_qa", "doc_mc", "docmath_qa"],
}


def tiny_config(path, **overrides):
    base = {
        "model.path": str(path),
        "tasks.docs_per_question": 2,
        "selfplay.questions_per_task": 1,
        "selfplay.group_size": 4,
        "selfplay.verifier_samples": 3,
        "selfplay.batch_groups": 3,
        "selfplay.max_generation_batches": 1,
        "sampling.max_response_tokens": 6,
        "memory.new_docs_per_round": 1,
        "run.seed": 7,
        # The scripted engine writes fixed JSON records about made-up facts: the grounded records,
        # the quality filter and the QA-only verifier are tested on their own below.
        **SCRIPTED_RECORDS,
    }
    base.update(overrides)
    return with_overrides(preset("cpu-demo"), base)


def tiny_corpus_records():
    records = []
    for c in range(2):
        for d in range(4):
            text = f"Cluster {c}, document {d}. Revenue in 20{d}1 was {d * 13 + c} million; Harrowmere had {d + 2} ferries."
            records.append(CorpusRecord(f"c{c}d{d}", text, f"c{c}", f"Doc {d}", c == 0))
    return records


@pytest.fixture(scope="module")
def tiny_path():
    return prepare_model(TINY_RANDOM)


def make_selfplay(tiny_path, scripted=True, **overrides):
    cfg = tiny_config(tiny_path, **overrides)
    model, tok = load_model(tiny_path)
    engine = HFEngine(model, tok)
    if scripted:
        engine = ScriptedEngine(engine, tok)
    settings = TrainerSettings.from_run_config(cfg, pad_token_id=tok.pad_token_id)
    settings.compute_entropy = True
    loss = functools.partial(policy_loss, clip=cfg.loss.clip, aggregation=cfg.loss.aggregation)
    trainer = TorchTrainer(model, loss, settings)
    corpus = Corpus.from_records(tiny_corpus_records(), lambda ts: [len(tok(t)["input_ids"]) for t in ts])
    return SelfPlay(cfg, engine, trainer, tok, corpus, 8192), model


def test_derive_seed_is_stable_and_spreads():
    assert derive_seed(7, "step", 1) == derive_seed(7, "step", 1)
    assert len({derive_seed(7, "step", k) for k in range(100)}) == 100
    assert 0 <= derive_seed("x") < 2**31


def test_a_step_trains_every_role_and_reports_everything(tiny_path):
    sp, model = make_selfplay(tiny_path, **{"optim.lr": 1e-3})
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = sp.step(1)
    m = result.metrics
    for group, keys in METRIC_GROUPS.items():
        assert keys <= set(m[group]), (group, keys - set(m[group]))
    # 3 tasks (cluster c0 is numeric) x 1 question, all parsed and grounded (scripted records).
    assert m["questioner"]["samples"] == 3 and m["questioner"]["parse_rate"] == 1.0
    assert m["responder"]["groups"] == 3
    assert result.trained and m["batch"]["updated"] == 1
    assert m["batch"]["sequences"]["responder"] == 4 * m["batch"]["responder_groups"] > 0
    assert m["batch"]["sequences"]["questioner"] >= 1
    assert m["train"]["tokens"] > 0 and m["train"]["grad_norm"] > 0
    assert m["time"]["total"] >= m["time"]["generation"] > 0
    assert 0 <= m["time"]["outside_model_share"] < 1
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items()), "the weights moved"
    # One sample per responder rollout (3 groups x 4), each with the documented fields.
    assert len(result.samples) == 12
    for s in result.samples:
        assert SAMPLE_FIELDS <= set(s), SAMPLE_FIELDS - set(s)
        assert s["rule_score"] in (0.0, 1.0)
        assert set(s["rewards"]) == {"questioner", "responder", "verifier"}
        assert s["rewards"]["responder"] == max(s["rule_score"], s["majority"] if s["majority"] in (0, 1) else 0)
        assert len(s["votes"]) == 3 and s["verdict"] in ("YES", "NO", "INVALID")
        assert set(s["doc_ids"]) <= set(s["responder_doc_ids"])
        assert s["context_tokens"] > 0 and s["memory_depth"] == 0 and s["curriculum_stage"] == m["curriculum"]["stage"]
    mc = [s for s in result.samples if s["task"] == "doc_mc"]
    assert mc and mc[0]["options"]["B"] == "Cecil" and mc[0]["reference"] == "B"
    assert all(s["task"] in ("doc_general_qa", "doc_mc", "docmath_qa") for s in result.samples)


def test_memory_grows_the_questioner_context_on_the_next_step(tiny_path):
    sp, _ = make_selfplay(tiny_path)
    first = sp.step(1)
    remembered = [s for s in first.samples if s["rbar"] is not None and 0 < s["rbar"] < 1]
    second = sp.step(2)
    if remembered:
        # An admitted question comes back as an example: depth 1 for its (task, cluster).
        assert second.metrics["memory"]["depth_max"] >= 1
        deep = [s for s in second.samples if s["memory_depth"] == 1]
        assert all(len(s["doc_ids"]) == 3 for s in deep)  # 2 remembered docs + 1 new


def test_without_varied_groups_the_update_is_skipped_but_metrics_and_samples_go_out(tiny_path):
    # The raw tiny model: its questioner records run out of tokens -> format errors -> no groups.
    sp, model = make_selfplay(tiny_path, scripted=False, **{"sampling.max_response_tokens": 4})
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = sp.step(1)
    assert not result.trained
    assert result.metrics["batch"]["updated"] == 0 and result.metrics["train"]["loss"] is None
    assert result.metrics["questioner"]["format_error"] == 3
    assert result.metrics["reward"]["questioner"] == -1.0
    assert len(result.samples) == 3
    assert all(s["response"] is None and s["questioner_status"] == "format_error" for s in result.samples)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_step_is_a_function_of_seed_and_step(tiny_path):
    a, _ = make_selfplay(tiny_path)
    b, _ = make_selfplay(tiny_path)
    ra, rb = a.step(3), b.step(3)
    strip = lambda m: {k: v for k, v in m.items() if k not in ("time", "throughput")}  # noqa: E731
    assert strip(ra.metrics) == strip(rb.metrics)
    assert [s["response"] for s in ra.samples] == [s["response"] for s in rb.samples]


class Recording:
    """Wraps an engine and keeps every prompt it was asked to continue (decoded)."""

    def __init__(self, inner, tokenizer):
        self.inner, self.tokenizer, self.prompts, self.grammars = inner, tokenizer, [], []

    def generate(self, prompts, n, sampling, grammars=None, progress=None, seeds=None):
        self.prompts += [self.tokenizer.decode(p) for p in prompts]
        self.grammars += list(grammars) if grammars else [sampling.grammar] * len(prompts)
        return self.inner.generate(prompts, n, sampling, grammars=grammars, progress=progress, seeds=seeds)

    def sync_weights(self, state_dict):
        self.inner.sync_weights(state_dict)

    def close(self):
        self.inner.close()


PAPER_SWITCHES = {
    # the paper-7b values of every knob cpu-demo sets otherwise (its sizes stay tiny)
    "prompts.style": "release", "prompts.strict_record": True, "structured.questioner": False,
    "structured.verifier": False, "selfplay.verifier_batch": "fixed", "loss.advantage_std": "unbiased",
    "loss.per_role_mean": False, "length_curriculum.enabled": False,
}


def test_a_step_with_the_paper_switches_trains_on_release_prompts(tiny_path):
    sp, _ = make_selfplay(tiny_path, **PAPER_SWITCHES, **{"optim.lr": 1e-3})
    sp.engine = sp.runner.engine = Recording(sp.engine, sp.tokenizer)
    result = sp.step(1)
    m = result.metrics
    # the scripted records are fenced json blocks: the strict reading takes them
    assert m["questioner"]["parse_rate"] == 1.0 and result.trained
    # the fixed verifier quota, int(trained responder rollouts x 0.125 / 3 votes), or none when
    # fewer are eligible
    sp_cfg = sp.cfg.selfplay
    rollouts = m["batch"]["responder_groups"] * sp_cfg.group_size
    quota = int(rollouts * sp_cfg.verifier_share / sp_cfg.verifier_samples)
    assert quota >= 1 and m["batch"]["verifier_groups"] == (quota if m["verifier"]["eligible_groups"] >= quota else 0)
    questioner = [p for p in sp.engine.prompts if "We are building a benchmark" in p]
    assert len(questioner) == 3 and all("Document 1" not in p.replace('"Document 1", "Article 2"', "") for p in questioner)
    (mc,) = [p for p in questioner if "multiple-choice" in p]
    assert any(f"the correct option must be ({x})" in mc for x in "ABCD")
    assert any("without attempting to solve the problem" in p for p in sp.engine.prompts)
    # off: the context is the prompt limit, not a stage
    assert m["curriculum"]["max_context"] == sp.cfg.sampling.max_prompt_tokens


def test_questioner_and_responder_number_each_document_alike(tiny_path):
    sp, _ = make_selfplay(tiny_path)  # the small style labels documents "Document N"
    sp.engine = sp.runner.engine = Recording(sp.engine, sp.tokenizer)
    result = sp.step(1)
    texts = {r.id: r.text for r in tiny_corpus_records()}
    labels = lambda prompt: {m.group(2): m.group(1) for m in re.finditer(r"Document (\d+)[^\n]*:\n([^\n]+)", prompt)}  # noqa: E731
    questioner = [p for p in sp.engine.prompts if "You write exam questions" in p]
    responder = [p for p in sp.engine.prompts if "Read the documents and answer" in p and "<documents>\nEmpty" not in p]
    assert questioner and responder
    seen = {}
    for prompt in questioner + responder:
        for text, number in labels(prompt).items():
            assert seen.setdefault(text, number) == number, f"{text!r} is Document {seen[text]} and {number}"
    # the number is the document's place in its cluster (c0d2 -> Document 3)
    assert labels(responder[0])[texts["c0d2"] if "Cluster 0" in responder[0] else texts["c1d2"]] == "3"
    assert all(s["doc_ids"] == sorted(s["doc_ids"]) for s in result.samples)


def test_an_external_verifier_judges_and_is_not_trained(tiny_path):
    from spell.rollout import Judge

    sp, _ = make_selfplay(tiny_path, **{"optim.lr": 1e-3, "selfplay.verifier_model": str(tiny_path)})
    judge_model, judge_tok = load_model(tiny_path)
    judge_engine = Recording(ScriptedEngine(HFEngine(judge_model, judge_tok), judge_tok), judge_tok)
    sp.engine = sp.runner.engine = Recording(sp.engine, sp.tokenizer)
    sp.runner.judge = Judge(judge_engine, judge_tok)
    before = {k: v.clone() for k, v in judge_model.state_dict().items()}
    result = sp.step(1)
    m = result.metrics
    assert m["verifier"]["judgments"] > 0 and result.trained
    assert judge_engine.prompts and all("Judge whether a candidate answer" in p for p in judge_engine.prompts)
    assert not any("Judge whether a candidate answer" in p for p in sp.engine.prompts)
    # judged, counted, never in the update
    assert m["batch"]["verifier_groups"] == 0 and m["batch"]["sequences"]["verifier"] == 0
    assert all(torch.equal(before[k], v) for k, v in judge_model.state_dict().items())
    assert any(s["votes"] for s in result.samples)


def test_a_grounded_step_quotes_its_documents_and_verifies_qa_only(tiny_path):
    # cpu-demo as it ships (grounded records, the quality filter, the answer-line responder, a
    # QA-only verifier), decoded by the real tiny model under the grammars: whatever it writes,
    # each questioner record quotes a sentence of its own documents.
    sp, _ = make_selfplay(tiny_path, scripted=False, **{
        "structured.grounded": True, "structured.responder": True, "selfplay.question_quality_filter": True,
        "selfplay.verifier_tasks": ["doc_general_qa"], "sampling.max_response_tokens": 112,
    })
    sp.engine = sp.runner.engine = Recording(sp.engine, sp.tokenizer)
    result = sp.step(1)
    m = result.metrics
    docs = {r.id: r.text for r in tiny_corpus_records()}
    proposals = {(s["cluster"], s["question"]): s for s in result.samples if s["question"]}
    assert proposals, "the grammar always yields a readable record"
    for s in proposals.values():
        sentences = {x for d in s["doc_ids"] for x in split_sentences(docs[d])}
        assert s["evidence"] in sentences, s["evidence"]
        # the quality rule's verdict on every parsed record (one cut short by the token limit
        # does not parse: a format error of its own), and the filter acts on it
        if s["question_quality"] is None:
            assert s["questioner_status"] == "format_error" and not s["questioner_reason"].startswith("question quality")
        assert (s["question_quality"] == "ok") or s["questioner_status"] == "format_error"
    ok = sum(1 for s in proposals.values() if s["question_quality"] == "ok")
    assert m["questioner"]["question_quality"] == pytest.approx(ok / m["questioner"]["samples"])
    questioner = [g for p, g in zip(sp.engine.prompts, sp.engine.grammars) if "Evidence:" in p and "Question:" in p]
    assert questioner and all(g and g.startswith("root ::=") for g in questioner)
    for s in result.samples:
        if s["response"] is not None:
            assert s["response"].startswith("The correct answer is")
        # only QA answers are judged; MC and DocMath rewards are the rule score
        if s["task"] != "doc_general_qa":
            assert s["votes"] in ([], None) and s["rewards"]["responder"] == s["rule_score"]
