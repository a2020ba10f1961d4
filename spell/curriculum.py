"""The two curricula of SPELL (SPELL.md, "Curriculum"), both serialisable to JSON.

- `HistoryMemory`: per (task, cluster) a FIFO of the last L accepted questions with the documents
  each was asked over. Its **memory depth** (0..L) is how many remembered questions the
  questioner sees; the questioner's documents grow by `new_docs_per_round` per remembered
  question, up to the whole cluster.
- `LengthCurriculum`: stages of maximum context (tokens), promoted when the responder's rolling
  accuracy reaches a threshold. Its **curriculum stage** is independent of memory depth.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

from spell.answers import normalize_answer

MEMORY_STATE_VERSION = 1


@dataclass
class MemoryEntry:
    question: str
    answer: str
    doc_ids: list[str]
    options: dict[str, str] | None = None
    rbar: float | None = None
    step: int | None = None

    def example(self) -> dict[str, Any]:
        """The form `prompts.questioner_messages(memory=...)` takes."""
        out: dict[str, Any] = {"question": self.question, "answer": self.answer}
        if self.options:
            out["options"] = dict(self.options)
        return out


def admits(*, rule: str, r_que: float | None = None, rbar: float | None = None, fresh: bool = True) -> bool:
    """Whether a question enters memory. paper: its questioner reward r_que > 0; release: it is
    fresh and its group mean rbar is in [0.01, 1]."""
    if rule == "paper":
        return r_que is not None and r_que > 0
    if rule == "release":
        return fresh and rbar is not None and 0.01 <= rbar <= 1.0
    raise ValueError(f"unknown admission rule {rule!r} (choices: paper, release)")


class HistoryMemory:
    """FIFO memory of accepted questions per (task, cluster)."""

    def __init__(
        self,
        depth: int = 3,
        *,
        docs_per_question: int = 5,
        new_docs_per_round: int = 5,
        admission: str = "paper",
        enabled: bool = True,
    ):
        self.depth = depth if enabled else 0
        self.docs_per_question = docs_per_question
        self.new_docs_per_round = new_docs_per_round
        self.admission = admission
        self._slots: dict[tuple[str, str], deque[MemoryEntry]] = {}

    @classmethod
    def from_config(cls, cfg: Any) -> HistoryMemory:
        """From a RunConfig (uses cfg.memory and cfg.tasks.docs_per_question)."""
        return cls(
            cfg.memory.depth,
            docs_per_question=cfg.tasks.docs_per_question,
            new_docs_per_round=cfg.memory.new_docs_per_round,
            admission=cfg.memory.admission,
            enabled=cfg.memory.enabled,
        )

    # -- reading --------------------------------------------------------------------------------

    def entries(self, task: str, cluster: str) -> list[MemoryEntry]:
        return list(self._slots.get((task, cluster), ()))

    def memory_depth(self, task: str, cluster: str) -> int:
        """How many remembered questions the questioner sees for this (task, cluster)."""
        return len(self._slots.get((task, cluster), ()))

    def examples(self, task: str, cluster: str) -> list[dict[str, Any]]:
        return [e.example() for e in self.entries(task, cluster)]

    def is_fresh(self, task: str, cluster: str, question: str) -> bool:
        """False when the same question (SQuAD-normalised) is already remembered."""
        key = normalize_answer(question)
        return all(normalize_answer(e.question) != key for e in self.entries(task, cluster))

    def select_documents(
        self, task: str, cluster: str, cluster_doc_ids: Sequence[str], rng: random.Random
    ) -> list[str]:
        """The documents the questioner sees, in the cluster's order (as the release sorts them,
        so they read in the order the responder sees them): with an empty memory
        `docs_per_question` sampled from the cluster; otherwise the union of the remembered
        questions' documents plus `new_docs_per_round` new ones from the rest of the cluster."""
        entries = self.entries(task, cluster)
        ids = list(dict.fromkeys(cluster_doc_ids))
        order = {d: i for i, d in enumerate(ids)}
        if not entries:
            chosen = rng.sample(ids, min(self.docs_per_question, len(ids)))
        else:
            union = [d for d in dict.fromkeys(d for e in entries for d in e.doc_ids) if d in order]
            seen = set(union)
            rest = [d for d in ids if d not in seen]
            chosen = union + rng.sample(rest, min(self.new_docs_per_round, len(rest)))
        return sorted(chosen, key=order.__getitem__)

    def drop_order(self, task: str, cluster: str, chosen: Sequence[str]) -> list[str]:
        """The order in which `chosen` documents give way when the questioner's context is over
        budget (memory.overflow = fit): the new documents first (from the end), then the
        remembered ones, the oldest remembered question's documents first."""
        remembered = list(dict.fromkeys(d for e in self.entries(task, cluster) for d in e.doc_ids if d in chosen))
        new = [d for d in chosen if d not in set(remembered)]
        return list(reversed(new)) + remembered

    # -- writing --------------------------------------------------------------------------------

    def add(self, task: str, cluster: str, entry: MemoryEntry) -> None:
        """Append, dropping the oldest beyond `depth` (no-op when depth is 0)."""
        if self.depth <= 0:
            return
        slot = self._slots.setdefault((task, cluster), deque())
        slot.append(entry)
        while len(slot) > self.depth:
            slot.popleft()

    def offer(
        self,
        task: str,
        cluster: str,
        entry: MemoryEntry,
        *,
        r_que: float | None = None,
        rbar: float | None = None,
    ) -> bool:
        """Add `entry` when the admission rule accepts it; return whether it was added."""
        if rbar is None:
            rbar = entry.rbar
        fresh = self.is_fresh(task, cluster, entry.question)
        if self.depth <= 0 or not admits(rule=self.admission, r_que=r_que, rbar=rbar, fresh=fresh):
            return False
        self.add(task, cluster, entry)
        return True

    # -- state ----------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "version": MEMORY_STATE_VERSION,
            "slots": [
                {"task": task, "cluster": cluster, "entries": [asdict(e) for e in slot]}
                for (task, cluster), slot in self._slots.items()
            ],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("version") != MEMORY_STATE_VERSION:
            raise ValueError(f"unsupported memory state version {state.get('version')!r}")
        self._slots = {}
        for slot in state["slots"]:
            for e in slot["entries"]:
                self.add(slot["task"], slot["cluster"], MemoryEntry(**e))


def fit_questioner_documents(
    chosen: Sequence[str], drop_order: Sequence[str], doc_tokens: Mapping[str, int], budget: int
) -> list[str] | None:
    """`chosen` less the fewest documents, taken in `drop_order`, whose tokens fit `budget`; None
    when not even one document fits."""
    kept = list(chosen)
    total = sum(doc_tokens[d] for d in kept)
    for d in drop_order:
        if total <= budget or len(kept) == 1:
            break
        if d in kept:
            kept.remove(d)
            total -= doc_tokens[d]
    return kept if total <= budget else None


def fit_responder_documents(
    questioner_doc_ids: Sequence[str],
    cluster_doc_ids: Sequence[str],
    doc_tokens: Mapping[str, int],
    budget: int,
) -> list[str] | None:
    """The documents the responder sees: the whole cluster, dropping documents the questioner did
    not see (from the end of the cluster's order) until the total fits `budget` tokens.
    None when the questioner's own documents do not fit (the caller skips the cluster)."""
    seen = set(questioner_doc_ids)
    if sum(doc_tokens[d] for d in seen) > budget:
        return None
    kept = list(dict.fromkeys(cluster_doc_ids))
    total = sum(doc_tokens[d] for d in kept)
    for d in reversed(list(kept)):
        if total <= budget:
            break
        if d not in seen:
            kept.remove(d)
            total -= doc_tokens[d]
    return kept


@dataclass
class LengthCurriculum:
    """Stages of maximum context; promoted when the rolling responder accuracy reaches
    `promote_accuracy` over a full window of `window` steps (the window restarts after a
    promotion). Disabled: always the last stage, and the maximum context is `ceiling` (the
    longest prompt) when given: the paper trains at its full context throughout."""

    stages: list[int]
    promote_accuracy: float = 0.6
    window: int = 5
    enabled: bool = True
    stage: int = 0
    history: list[float] = field(default_factory=list)
    ceiling: int | None = None

    def __post_init__(self) -> None:
        if not self.stages:
            raise ValueError("a length curriculum needs at least one stage")
        if not self.enabled:
            self.stage = len(self.stages) - 1

    @classmethod
    def from_config(cls, cfg: Any) -> LengthCurriculum:
        lc = cfg.length_curriculum
        return cls(list(lc.stages), lc.promote_accuracy, lc.window, lc.enabled,
                   ceiling=cfg.sampling.max_prompt_tokens)

    @property
    def max_context(self) -> int:
        """The current curriculum stage's maximum context, in tokens (the ceiling when off)."""
        if not self.enabled and self.ceiling is not None:
            return self.ceiling
        return self.stages[self.stage]

    @property
    def is_last(self) -> bool:
        return self.stage >= len(self.stages) - 1

    @property
    def rolling_accuracy(self) -> float | None:
        return sum(self.history) / len(self.history) if self.history else None

    def record(self, accuracy: float) -> bool:
        """Add one step's responder accuracy; return True when this promoted the stage."""
        self.history.append(float(accuracy))
        del self.history[: -self.window]
        if (
            self.enabled
            and not self.is_last
            and len(self.history) >= self.window
            and self.rolling_accuracy is not None
            and self.rolling_accuracy >= self.promote_accuracy
        ):
            self.stage += 1
            self.history.clear()
            return True
        return False

    def fits(self, context_tokens: int) -> bool:
        return context_tokens <= self.max_context

    def state_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "history": list(self.history)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        stage = int(state["stage"])
        if not 0 <= stage < len(self.stages):
            raise ValueError(f"stage {stage} out of range for {len(self.stages)} stages")
        self.stage = stage
        self.history = [float(x) for x in state.get("history", [])][-self.window :]
