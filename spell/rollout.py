"""The generation phases of one SPELL step (SPELL.md, "Step structure and batch").

One generation batch, in the order the paper runs it:
  1. `propose`: sample clusters and questioner prompts (equal shares per task, documents chosen
     by the history memory, sizes bounded by the length curriculum) and generate one record each;
  2. parse and validate the records;
  3. `ground`: answer every valid question once with the documents replaced by "Empty";
  4. `respond`: G responder rollouts per grounded question over ALL cluster documents (unseen
     documents dropped until the prompt fits; a cluster whose questioner documents do not fit is
     skipped and counted);
  5. rule scores; `verify`: G verifier judgments per rollout; responder reward = max(rule, vote).
The step (spell/selfplay.py) turns the records into rewards, the update batch and metrics.

Small models (structured.grounded): each prompt gets a grammar built from its own documents
(spell/grounded.py), every record is checked by the question-quality rule (spell/quality.py;
with selfplay.question_quality_filter an ill-formed one is a format error), and tasks outside
selfplay.verifier_tasks are rewarded by the rule score alone.

Every prompt gets a seed derived from its work item (run seed, step, generation batch, phase,
question slot, and the answer for a verifier prompt), never from the process: a step is
reproducible from its inputs alone (resume gives the same step as an uninterrupted run), and
several ranks (spell/distributed.py) can split a generation batch by question slot, each running
every phase of its own questions, then gather the proposals so that each rank holds the whole
batch, as one process would have generated it.
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

from spell import grounded, prompts
from spell.config import role_max_tokens
from spell.curriculum import HistoryMemory, LengthCurriculum, fit_questioner_documents, fit_responder_documents
from spell.distributed import SINGLE, DataParallel
from spell.engines.base import Completion, RolloutEngine, SamplingParams
from spell.parsing import FORMAT_ERROR, OK, QuestionParse, extract_answer, parse_questioner, parse_verifier
from spell.progress import NO_PROGRESS, Progress
from spell.quality import Quality, question_quality
from spell.rewards import is_ungrounded, responder_reward, rule_score, verifier_majority

TASKS = ("doc_general_qa", "doc_mc", "docmath_qa")


def derive_seed(*parts: Any) -> int:
    """A 31-bit seed from any parts, the same in every process (unlike `hash`)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


# ---------------------------------------------------------------------------------------------
# The corpus as the step sees it
# ---------------------------------------------------------------------------------------------


@dataclass
class Document:
    id: str
    text: str
    title: str | None
    tokens: int


@dataclass
class Cluster:
    id: str
    doc_ids: list[str]
    numeric: bool


@dataclass
class Corpus:
    documents: dict[str, Document]
    clusters: list[Cluster]

    def __post_init__(self) -> None:
        # Each document's place in its cluster (1-based): the number the small prompts label it
        # with, the same for the questioner and the responder whatever subset either sees.
        self._number = {d: i for c in self.clusters for i, d in enumerate(c.doc_ids, 1)}

    @property
    def doc_tokens(self) -> dict[str, int]:
        return {d.id: d.tokens for d in self.documents.values()}

    def clusters_for(self, task: str) -> list[Cluster]:
        """Every cluster feeds general QA and MC; only numeric clusters feed DocMath."""
        if task == "docmath_qa":
            return [c for c in self.clusters if c.numeric]
        return list(self.clusters)

    def docs(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        return [
            {"title": self.documents[i].title, "text": self.documents[i].text, "number": self._number.get(i)}
            for i in ids
        ]

    @classmethod
    def from_records(cls, records: Sequence[Any], count_tokens) -> "Corpus":
        """From spell.data.read_corpus_jsonl records; `count_tokens(texts) -> list[int]`."""
        counts = count_tokens([r.text for r in records])
        documents = {r.id: Document(r.id, r.text, r.title, n) for r, n in zip(records, counts)}
        clusters: dict[str, Cluster] = {}
        for r in records:
            c = clusters.setdefault(r.cluster, Cluster(r.cluster, [], False))
            c.doc_ids.append(r.id)
            c.numeric = c.numeric or r.numeric
        return cls(documents, list(clusters.values()))


# ---------------------------------------------------------------------------------------------
# Records of one generation batch
# ---------------------------------------------------------------------------------------------


@dataclass
class Rollout:
    """One generated sequence that may be trained on."""

    prompt_ids: list[int]
    completion: Completion


@dataclass
class Judgment:
    """G verifier samples for one responder rollout."""

    rollouts: list[Rollout]
    decisions: list[int]
    majority: int


@dataclass
class Answer:
    """One responder rollout with its scores."""

    rollout: Rollout
    extracted: str | None
    rule: float
    judgment: Judgment | None = None  # None: the verifier was skipped (off, or no answer given)
    reward: float = 0.0

    @property
    def majority(self) -> int | None:
        return None if self.judgment is None else self.judgment.majority


@dataclass
class Proposal:
    """One questioner sample and everything generated from it in this batch."""

    task: str
    cluster: str
    doc_ids: list[str]  # the documents the questioner saw
    memory_depth: int
    stage_tokens: int  # the length curriculum's maximum context when it was asked
    rollout: Rollout
    parse: QuestionParse
    grounding: Rollout | None = None
    grounding_score: float | None = None
    responder_doc_ids: list[str] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    skipped: str = ""  # why no responder ran although the record was valid ("context", "ungrounded")
    quality: Quality | None = None  # the question-quality rule's verdict on a parsed record
    fitted_out: int = 0  # documents dropped to fit the context (memory.overflow = fit)
    slot: int = 0  # the question's place in its generation batch (its seeds derive from it)
    rank: int = 0  # the process that generated it (slot % world size)

    @property
    def context_tokens(self) -> int:
        return self.answers[0].rollout.completion.prompt_tokens if self.answers else 0


@dataclass
class Phases:
    """Wall-clock seconds per generation phase and counters for one generation batch."""

    seconds: dict[str, float] = field(default_factory=lambda: {"questioner": 0.0, "grounding": 0.0, "responder": 0.0, "verifier": 0.0})
    skipped_clusters: int = 0  # questioner documents did not fit the stage / prompt limit
    generated_tokens: int = 0
    # Of skipped_clusters, those the responder phase skipped (its own questions: per rank)
    context_skips: int = 0
    # Per rank (rank order): generated tokens and seconds of generation, to show a straggler
    per_rank: list[dict[str, float]] = field(default_factory=list)

    @classmethod
    def merge(cls, ranks: list["Phases"]) -> "Phases":
        """The phases of one generation batch split over ranks: a phase took as long as its
        slowest rank; tokens and responder skips add up; the questioner planning's skips are the
        same on every rank (every rank plans every slot) and count once."""
        planned = ranks[0].skipped_clusters - ranks[0].context_skips
        context = sum(r.context_skips for r in ranks)
        return cls(
            seconds={k: max(r.seconds[k] for r in ranks) for k in ranks[0].seconds},
            skipped_clusters=planned + context,
            generated_tokens=sum(r.generated_tokens for r in ranks),
            context_skips=context,
            per_rank=[{"generated_tokens": r.generated_tokens, "seconds": sum(r.seconds.values())} for r in ranks],
        )


# ---------------------------------------------------------------------------------------------
# The phases
# ---------------------------------------------------------------------------------------------


@dataclass
class Judge:
    """An external verifier: a frozen model (its own engine and tokenizer) that judges instead of
    the policy (`selfplay.verifier_model`). Its samples are another model's tokens: never trained."""

    engine: RolloutEngine
    tokenizer: Any


class RolloutRunner:
    """Runs the generation phases with one engine, tokenizer and config (and an external judge)."""

    CLUSTER_TRIES = 4

    def __init__(
        self, engine: RolloutEngine, tokenizer: Any, cfg: Any, corpus: Corpus, model_positions: int,
        judge: Judge | None = None, progress: Progress = NO_PROGRESS, group: DataParallel = SINGLE,
    ):
        self.engine = engine
        self.group = group
        self.progress = progress
        self.tokenizer = tokenizer
        self.cfg = cfg
        self.corpus = corpus
        self.judge = judge
        self.style = cfg.prompts.style
        # A prompt may use the model's positions less the longest response.
        self.prompt_limit = min(cfg.sampling.max_prompt_tokens, model_positions - cfg.sampling.max_response_tokens)

    # -- helpers ----------------------------------------------------------------------------------

    def encode(self, messages: list[dict[str, str]], tokenizer: Any = None) -> list[int]:
        return prompts.encode_messages(tokenizer or self.tokenizer, messages)

    def sampling(self, seed: int, schema: dict[str, Any] | None = None, role: str = "responder") -> SamplingParams:
        s = self.cfg.sampling
        return SamplingParams(
            temperature=s.temperature, top_p=s.top_p, max_new_tokens=role_max_tokens(self.cfg, role), seed=seed,
            json_schema=schema,
        )

    def _generate(
        self, phases: Phases, phase: str, prompts_: list[list[int]], n: int, sampling: SamplingParams, engine: Any = None,
        grammars: list[str | None] | None = None, seeds: list[int] | None = None,
    ) -> list[list[Completion]]:
        # Several ranks call the engine even with nothing to generate: under ZeRO-3 entering a
        # generation gathers the weights, a collective every rank must join.
        if not prompts_ and not self.group.several:
            return []
        started = time.monotonic()
        engine = engine or self.engine
        with self.progress.phase(phase, len(prompts_) * n) as reported:
            out = engine.generate(prompts_, n, sampling, grammars=grammars or None, progress=reported.advance,
                                  seeds=seeds)
        phases.seconds[phase] += time.monotonic() - started
        phases.generated_tokens += sum(len(c.token_ids) for group in out for c in group)
        return out

    def task_counts(self) -> dict[str, int]:
        """Questioner prompts per task for one generation batch: `questions_per_task` each at equal
        weights (the mix scales it); DocMath only when the corpus has numeric clusters."""
        mix = {t: w for t, w in self.cfg.tasks.mix.items() if w > 0 and self.corpus.clusters_for(t)}
        if not mix:
            return {}
        total = self.cfg.selfplay.questions_per_task * len(mix)
        weight = sum(mix.values())
        return {t: max(1, round(total * w / weight)) for t, w in mix.items() if t in TASKS}

    # -- 1. questioner ---------------------------------------------------------------------------

    def propose(
        self, memory: HistoryMemory, curriculum: LengthCurriculum, rng: random.Random, seed: int, phases: Phases
    ) -> list[Proposal]:
        budget = min(curriculum.max_context, self.prompt_limit)
        cfg = self.cfg
        structured = cfg.structured.questioner
        grounded_records = structured and cfg.structured.grounded
        cloze = grounded_records and cfg.structured.cloze_questions
        record_limit = role_max_tokens(cfg, "questioner") - 1  # and the stop token

        def record_fits(text: str) -> bool:
            # A grammar-forced text can come out in more tokens than its canonical encoding (the
            # model may spell a word in pieces): 15% of room for that.
            return len(self.tokenizer(text, add_special_tokens=False)["input_ids"]) * 1.15 <= record_limit
        # Release style: the letter the correct MC option must have, drawn per prompt to balance
        # the answer letters (what the release's <correct_answer> placeholder is for).
        draw_letter = self.style == "release"
        proposals: list[Proposal] = []
        slot = 0  # every rank plans every slot (the same draws); each generates its own slots only
        for task, count in self.task_counts().items():
            pending: list[tuple[str, list[str], int, list[int], str | None, int, int]] = []
            clusters = self.corpus.clusters_for(task)
            for _ in range(count):
                # A cluster whose questioner documents do not fit is fitted (memory.overflow = fit)
                # or skipped and counted, a few other clusters being tried in its place.
                for _attempt in range(self.CLUSTER_TRIES):
                    cluster = rng.choice(clusters)
                    doc_ids = memory.select_documents(task, cluster.id, cluster.doc_ids, rng)
                    depth = memory.memory_depth(task, cluster.id)
                    examples = memory.examples(task, cluster.id)
                    letter = rng.choice(prompts.LETTERS) if draw_letter and task == "doc_mc" else None

                    def encode(ids_: list[str]) -> list[int]:
                        return self.encode(prompts.questioner_messages(
                            task, self.corpus.docs(ids_), examples, structured=structured, style=self.style,
                            target_letter=letter, grounded=grounded_records, cloze=cloze,
                        ))

                    ids = encode(doc_ids)
                    dropped = 0
                    if len(ids) > budget and cfg.memory.overflow == "fit":
                        kept = self._fit(task, cluster.id, memory, doc_ids, examples, budget, encode)
                        if kept is not None:
                            dropped, doc_ids = len(doc_ids) - len(kept), kept
                            ids = encode(doc_ids)
                    grammar = (grounded.questioner_grammar(task, self.corpus.docs(doc_ids), cloze=cloze,
                                                           fits=record_fits) if grounded_records else None)
                    if len(ids) <= budget and (grammar is not None or not grounded_records):
                        if self.group.owns(slot):
                            pending.append((cluster.id, doc_ids, depth, ids, grammar, dropped, slot))
                        slot += 1
                        break
                    phases.skipped_clusters += 1
            chars = prompts.text_budget(role_max_tokens(cfg, "questioner"))
            schema = prompts.questioner_schema(task, chars) if structured and not grounded_records else None
            sampling = self.sampling(derive_seed(seed, "questioner", task), schema, role="questioner")
            grammars = [p[4] for p in pending] if grounded_records else None
            outputs = self._generate(phases, "questioner", [p[3] for p in pending], 1, sampling, grammars=grammars,
                                     seeds=[derive_seed(seed, "questioner", p[6]) for p in pending])
            for (cluster_id, doc_ids, depth, ids, _, dropped, slot_), (completion,) in zip(pending, outputs):
                parse = parse_questioner(
                    task,
                    completion.text,
                    max_answer_tokens=cfg.selfplay.qa_answer_max_tokens,
                    count_tokens=lambda s: len(self.tokenizer(s, add_special_tokens=False)["input_ids"]),
                    strict=cfg.prompts.strict_record,
                )
                proposal = Proposal(task, cluster_id, doc_ids, depth, curriculum.max_context, Rollout(ids, completion), parse,
                                    fitted_out=dropped, slot=slot_, rank=self.group.rank)
                self._judge_quality(proposal)
                proposals.append(proposal)
        return proposals

    def _fit(self, task, cluster_id, memory, doc_ids, examples, budget, encode) -> list[str] | None:
        """The questioner's documents cut to the budget (memory.overflow = fit): new documents
        give way first, then the oldest remembered ones (HistoryMemory.drop_order)."""
        overhead = len(encode([]))
        per_doc = {d: self.corpus.documents[d].tokens + 8 for d in doc_ids}  # + the header line
        kept = fit_questioner_documents(doc_ids, memory.drop_order(task, cluster_id, doc_ids), per_doc, budget - overhead)
        # Token counts of documents alone are a close estimate: drop more while the prompt is over.
        while kept is not None and len(encode(kept)) > budget:
            kept = kept[:-1] if len(kept) > 1 else None
        return kept

    def _judge_quality(self, p: Proposal) -> None:
        """The question-quality rule on a parsed record; with the filter on, an ill-formed record
        becomes a format error (its fields stay, for people to read)."""
        if not p.parse.ok:
            return
        answer = p.parse.answer_value if p.task == "docmath_qa" else p.parse.answer
        p.quality = question_quality(p.task, p.parse.question, answer, p.parse.options, self.corpus.docs(p.doc_ids))
        if not p.quality.ok and self.cfg.selfplay.question_quality_filter:
            p.parse.status, p.parse.reason = FORMAT_ERROR, f"question quality: {p.quality.reason}"

    # -- 3. grounding filter -----------------------------------------------------------------------

    def ground(self, proposals: list[Proposal], seed: int, phases: Phases) -> None:
        """Answer each valid question once without documents; a rule score >= threshold marks it
        ungrounded (guessable). Off in the config: every valid question counts as grounded."""
        valid = [p for p in proposals if p.parse.ok]
        if not self.cfg.selfplay.grounding_enabled:
            return
        ids = [self.encode(prompts.grounding_messages(p.task, p.parse.question, p.parse.options, style=self.style)) for p in valid]
        # Under a responder grammar the guess is decoded as the responder answers (its answer line).
        grammars = [grounded.responder_grammar(p.task) for p in valid] if self.cfg.structured.responder else None
        outputs = self._generate(phases, "grounding", ids, 1, self.sampling(derive_seed(seed, "grounding")), grammars=grammars,
                                 seeds=[derive_seed(seed, "grounding", p.slot) for p in valid])
        for p, prompt_ids, (completion,) in zip(valid, ids, outputs):
            p.grounding = Rollout(prompt_ids, completion)
            p.grounding_score = rule_score(p.task, completion.text, p.parse.answer)
            if is_ungrounded(p.grounding_score, self.cfg.selfplay.grounding_threshold):
                p.skipped = "ungrounded"

    # -- 4. responder ----------------------------------------------------------------------------

    def respond(self, proposals: list[Proposal], curriculum: LengthCurriculum, seed: int, phases: Phases) -> None:
        budget = min(curriculum.max_context, self.prompt_limit)
        doc_tokens = self.corpus.doc_tokens
        one_line = self.cfg.structured.responder and self.cfg.structured.grounded
        todo: list[tuple[Proposal, list[int]]] = []
        for p in proposals:
            if not p.parse.ok or p.skipped:
                continue
            cluster = next(c for c in self.corpus.clusters if c.id == p.cluster)
            # What the prompt costs besides the documents: template, question, instructions.
            overhead = len(self.encode(prompts.responder_messages(
                p.task, [], p.parse.question, p.parse.options, style=self.style, grounded=one_line)))
            # format_documents adds a header line per document: count it with the document.
            per_doc = {d: doc_tokens[d] + 8 for d in cluster.doc_ids}
            kept = fit_responder_documents(p.doc_ids, cluster.doc_ids, per_doc, budget - overhead)
            ids = None
            if kept is not None:
                ids = self.encode(prompts.responder_messages(
                    p.task, self.corpus.docs(kept), p.parse.question, p.parse.options, style=self.style, grounded=one_line))
                if len(ids) > budget:
                    ids = None
            if ids is None:
                p.skipped = "context"
                phases.skipped_clusters += 1
                phases.context_skips += 1
                continue
            p.responder_doc_ids = kept
            todo.append((p, ids))
        G = self.cfg.selfplay.group_size
        grammars = None
        if self.cfg.structured.responder:
            grammars = [grounded.responder_grammar(p.task) for p, _ in todo]
        outputs = self._generate(phases, "responder", [ids for _, ids in todo], G, self.sampling(derive_seed(seed, "responder")),
                                 grammars=grammars, seeds=[derive_seed(seed, "responder", p.slot) for p, _ in todo])
        for (p, ids), completions in zip(todo, outputs):
            for c in completions:
                extracted = extract_answer(p.task, c.text)
                p.answers.append(Answer(Rollout(ids, c), extracted, rule_score(p.task, c.text, p.parse.answer)))

    # -- 5. verifier -----------------------------------------------------------------------------

    def verify(self, proposals: list[Proposal], seed: int, phases: Phases) -> None:
        """G verifier judgments per rollout with an answer, then r_res = max(rule, majority).
        A rollout without an extracted answer is not sent to the verifier: its reward is the rule
        score (0), as for a skipped verifier. With an external judge, the judge's engine and
        tokenizer judge."""
        cfg = self.cfg
        tokenizer = self.judge.tokenizer if self.judge else self.tokenizer
        decision_only = cfg.structured.verifier and cfg.structured.grounded
        todo: list[tuple[Proposal, Answer, list[int]]] = []
        answer_seeds: list[int] = []
        if cfg.selfplay.verifier_enabled:
            for p in proposals:
                if p.task not in cfg.selfplay.verifier_tasks:
                    continue  # this task's reward is the rule score alone
                for index, a in enumerate(p.answers):
                    if a.extracted is None:
                        continue
                    messages = prompts.verifier_messages(
                        p.task, p.parse.question, a.extracted, p.parse.answer, p.parse.options,
                        structured=cfg.structured.verifier, style=self.style, grounded=decision_only,
                    )
                    todo.append((p, a, self.encode(messages, tokenizer)))
                    answer_seeds.append(derive_seed(seed, "verifier", p.slot, index))
        chars = prompts.text_budget(role_max_tokens(cfg, "verifier"))
        schema = prompts.verifier_schema(chars) if cfg.structured.verifier and not decision_only else None
        sampling = self.sampling(derive_seed(seed, "verifier"), schema, role="verifier")
        if decision_only:
            sampling = replace(sampling, grammar=grounded.verifier_grammar())
        outputs = self._generate(phases, "verifier", [ids for *_, ids in todo], cfg.selfplay.verifier_samples, sampling,
                                 engine=self.judge.engine if self.judge else None, seeds=answer_seeds)
        for (p, a, ids), completions in zip(todo, outputs):
            decisions = [parse_verifier(c.text) for c in completions]
            majority = verifier_majority(decisions, rule=cfg.rewards.majority)
            a.judgment = Judgment([Rollout(ids, c) for c in completions], decisions, majority)
        for p in proposals:
            for a in p.answers:
                a.reward = responder_reward(a.rule, a.majority)

    def generation_batch(
        self, memory: HistoryMemory, curriculum: LengthCurriculum, rng: random.Random, seed: int
    ) -> tuple[list[Proposal], Phases]:
        """One generation batch: this rank's question slots through every phase, then every rank's
        proposals gathered, in slot order (one process: its own, which are all of them)."""
        phases = Phases()
        proposals = self.propose(memory, curriculum, rng, seed, phases)
        self.ground(proposals, seed, phases)
        self.respond(proposals, curriculum, seed, phases)
        self.verify(proposals, seed, phases)
        gathered = self.group.gather((proposals, phases))
        proposals = sorted((p for ranked, _ in gathered for p in ranked), key=lambda p: p.slot)
        return proposals, Phases.merge([ranked for _, ranked in gathered])


__all__ = [
    "Answer", "Cluster", "Corpus", "Document", "Judge", "Judgment", "Phases", "Proposal", "Rollout", "RolloutRunner",
    "derive_seed", "OK",
]
