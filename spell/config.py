"""Run configuration: one typed dataclass tree holding every knob of SPELL (see SPELL.md).

The defaults are the paper's setting and its release's (`preset("paper-7b")` equals `RunConfig()`;
docs/fidelity.md says where and why they differ); `cpu-demo` is the small preset for SmolLM2-135M
on a CPU: overrides on the defaults, setting every knob it needs otherwise explicitly. Every field carries a help string (and, for enumerated
strings, its allowed choices) in its metadata, so the web form can render each knob from
`describe_fields()`.

    cfg = load_config("run.toml")              # a file may say preset = "cpu-demo" and override fields
    cfg = with_overrides(cfg, {"selfplay.group_size": 4})
    cfg.validate(model_max_positions=8192)     # raises ConfigError("field", "reason")
    RunConfig.from_dict(cfg.to_dict()) == cfg  # JSON-safe round trip
"""

from __future__ import annotations

import copy
import json
import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, Mapping

TASKS: tuple[str, ...] = ("doc_general_qa", "doc_mc", "docmath_qa")
PRESETS: tuple[str, ...] = ("paper-7b", "cpu-demo")
# Experiment trackers `run.report_to` may name (spell/trackers.py), as transformers / TRL have them.
REPORT_TO: tuple[str, ...] = ("tensorboard", "wandb", "mlflow")


class ConfigError(ValueError):
    """A bad configuration value: `field` is the dotted name, `reason` says what is wrong."""

    def __init__(self, field: str, reason: str):
        self.field = field
        self.reason = reason
        # Every error found, when this one is raised on behalf of several (see RunConfig.validate).
        self.errors: list[ConfigError] = [self]
        super().__init__(f"{field}: {reason}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ConfigError) and (self.field, self.reason) == (
            other.field,
            other.reason,
        )

    def __hash__(self) -> int:
        return hash((self.field, self.reason))


def knob(default: Any, help: str, *, choices: Iterable[Any] | None = None, minimum: float | None = None,
         maximum: float | None = None, open_minimum: bool = False) -> Any:
    """A dataclass field with its help text, allowed choices and bounds in the metadata. The bounds
    are the one declaration of a number's range: validate() enforces them (the form and the API
    alike) and the run form's inputs take them as min / max. `open_minimum`: the value must be
    above `minimum`, not equal to it."""
    meta: dict[str, Any] = {"help": help}
    if choices is not None:
        meta["choices"] = tuple(choices)
    if minimum is not None:
        meta["min"] = minimum
        meta["min_open"] = open_minimum
    if maximum is not None:
        meta["max"] = maximum
    if isinstance(default, (list, dict, set)):
        value = default
        return field(default_factory=lambda: copy.deepcopy(value), metadata=meta)
    return field(default=default, metadata=meta)


# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------


@dataclass
class ModelConfig:
    path: str = knob(
        "var/models/Qwen2.5-7B-Instruct", "Local Hugging Face model folder (weights + tokenizer)."
    )
    max_positions: int | None = knob(
        None, "Maximum positions of the model; empty = read from the model's config by the engine.", minimum=1,
    )
    dtype: str = knob(
        "bfloat16",
        "Weight / compute dtype; auto = the dtype stored in the model folder.",
        choices=("auto", "float32", "bfloat16"),
    )
    trust_remote_code: bool = knob(False, "Allow custom model code shipped in the model folder.")
    gradient_checkpointing: bool = knob(
        True, "Recompute activations in backward (less memory, ~30% slower)."
    )


@dataclass
class TasksConfig:
    mix: dict[str, float] = knob(
        {"doc_general_qa": 1.0, "doc_mc": 1.0, "docmath_qa": 1.0},
        "Relative weight of each task type (paper: equal shares). docmath_qa only draws from "
        "numeric clusters.",
    )
    docs_per_question: int = knob(
        5, "m: documents sampled from a cluster for a question without memory (paper: 5).", minimum=1,
    )


@dataclass
class SelfPlayConfig:
    questions_per_task: int = knob(
        160,
        "Questioner prompts per task in one generation batch (release: 480 prompts, 160 per task).", minimum=1,
    )
    group_size: int = knob(8, "G: responder rollouts per question (paper: 8).", minimum=2)
    verifier_samples: int = knob(8, "Verifier judgments per responder rollout (paper: 8).", minimum=1)
    batch_groups: int = knob(
        128, "B: responder groups with varying rewards to collect for one update (paper: 128).", minimum=1,
    )
    max_generation_batches: int = knob(
        10, "At most this many generation batches per step while collecting B groups (paper: 10).", minimum=1,
    )
    verifier_share: float = knob(
        0.125,
        "Verifier share of the update batch (paper: 12.5%): with verifier_batch = fixed, "
        "int(responder rollouts x share / verifier_samples) groups; with share, this share of the "
        "eligible groups.", minimum=0, maximum=1,
    )
    verifier_batch: str = knob(
        "fixed",
        "How many eligible verifier groups train: fixed = int(responder rollouts x verifier_share / "
        "verifier_samples) drawn at random, none when fewer are eligible (release: 16 at B=128, "
        "G=8); share = round(verifier_share x eligible groups), at least one (for small batches, "
        "where the fixed count is 0).",
        choices=("fixed", "share"),
    )
    bad_questioner_ratio: float = knob(
        1.0,
        "Bad questioner samples (format / ungrounded / zero variance) per good one in the update "
        "batch, stratified by task (paper: as many bad as good).",
    )
    qa_answer_max_tokens: int = knob(
        40, "General-QA reference answers longer than this many tokens are dropped.", minimum=1,
    )
    grounding_threshold: float = knob(
        0.1,
        "A question answered without documents with rule score >= this is ungrounded (-0.5).", minimum=0, maximum=1,
    )
    grounding_enabled: bool = knob(True, "Run the grounding filter (answer with 'Empty' docs).")
    verifier_enabled: bool = knob(
        True, "Use the verifier (off: responder reward = rule score; paper ablation)."
    )
    verifier_tasks: list[str] = knob(
        ["doc_general_qa", "doc_mc", "docmath_qa"],
        "Tasks whose responder reward uses the verifier (paper: all); the others use the rule "
        "score alone (for a model too small to verify them).",
    )
    question_quality_filter: bool = knob(
        False,
        "Score a questioner record that fails the question-quality rule (spell/quality.py: not "
        "a question, a fragment, schema text, off-topic, an answer not in the documents) like a "
        "format error. The share of well-formed records is reported either way.",
    )
    verifier_model: str = knob(
        "",
        "External verifier: a frozen model folder that judges instead of the policy (the paper's "
        "ablation with a fixed judge); its judgments are not trained. Empty = the policy itself.",
    )
    train_questioner: bool = knob(
        True, "Update the questioner role (off: paper ablation 'no questioner update')."
    )
    train_without_varied_groups: bool = knob(
        False,
        "When no responder group has varied rewards (the release then skips the update), still "
        "train the questioner on the step's scored records and the verifier on its eligible "
        "groups: for a small model that rarely gets a varied group (paper: off).",
    )
    mode: str = knob(
        "spell",
        "spell = self-play; rlvr = the paper's RLVR baseline: the responder alone, trained with "
        "rule rewards on the questions of selfplay.rlvr_set.",
        choices=("spell", "rlvr"),
    )
    rlvr_set: str = knob(
        "",
        "RLVR baseline: a QA file in an evaluation format (LongBench-v2 JSON, LongBench QA JSON "
        "lines, DocMath JSON); refused when it is one of eval.sets.",
    )


@dataclass
class RewardsConfig:
    questioner_mode: str = knob(
        "gaussian",
        "Questioner reward for 0<rbar<1: gaussian exp(-(rbar-0.5)^2/2sigma^2) (paper), reverse "
        "1-rbar, rzero 1-2|rbar-0.5|.",
        choices=("gaussian", "reverse", "rzero"),
    )
    sigma: float = knob(1 / 6, "Width of the gaussian questioner reward (paper: 0.5/3).", minimum=0, open_minimum=True)
    verifier_eligibility: str = knob(
        "maj_cons",
        "Verifier groups trained on: maj_cons = valid majority, not unanimous, and equal to the "
        "rule score (paper); maj = without the consistency check (ablation).",
        choices=("maj_cons", "maj"),
    )
    majority: str = knob(
        "paper",
        "Verifier majority: paper = YES votes > G/2; release = the mode, -1 when the mode is a "
        "format error.",
        choices=("paper", "release"),
    )
    agreement_min: float = knob(
        0.51, "Least share of valid judgments agreeing with the majority for eligibility.", minimum=0, maximum=1,
    )
    agreement_max: float = knob(
        0.99, "Largest share agreeing for eligibility (unanimous groups carry no signal).", minimum=0, maximum=1,
    )
    ungrounded_penalty: float = knob(-0.5, "Questioner reward of an ungrounded question.")
    format_penalty: float = knob(-1.0, "Questioner reward of an unparsable / invalid record.")


@dataclass
class MemoryConfig:
    enabled: bool = knob(True, "History memory per (task, cluster) (off: paper ablation).")
    depth: int = knob(3, "L: remembered questions per (task, cluster), FIFO (paper: 3).", minimum=0)
    admission: str = knob(
        "paper",
        "When a question enters memory: paper = its questioner reward > 0; release = fresh and "
        "0.01 <= rbar <= 1.",
        choices=("paper", "release"),
    )
    new_docs_per_round: int = knob(
        5, "New cluster documents added to the remembered ones for each follow-up question.", minimum=0,
    )
    overflow: str = knob(
        "skip",
        "When the questioner's documents (remembered + new) exceed the context: skip = try "
        "another document set and count the skip (release); fit = drop documents until the "
        "prompt fits: new documents first, then the oldest remembered ones (a document set is "
        "never starved).",
        choices=("skip", "fit"),
    )


@dataclass
class LengthCurriculumConfig:
    enabled: bool = knob(
        False,
        "Grow the maximum context over stages (ours, for small models; off: the paper trains at "
        "sampling.max_prompt_tokens throughout, its history memory growing the context).",
    )
    stages: list[int] = knob(
        [4096, 8192, 16384], "Maximum context (tokens) of each stage, increasing."
    )
    promote_accuracy: float = knob(
        0.6, "Move to the next stage when the responder's rolling accuracy reaches this.", minimum=0, maximum=1,
    )
    window: int = knob(5, "Steps in the rolling responder accuracy.", minimum=1)


@dataclass
class SamplingConfig:
    temperature: float = knob(0.7, "Sampling temperature for every role (paper: 0.7).", minimum=0, maximum=10)
    top_p: float = knob(0.95, "Nucleus sampling for every role (paper: 0.95).", minimum=0, maximum=1, open_minimum=True)
    max_response_tokens: int = knob(
        4096, "Longest completion of any role (paper: 4,096; 20K for thinking models).", minimum=1,
    )
    max_prompt_tokens: int = knob(18000, "Longest prompt (release: 18,000 tokens).", minimum=1)
    questioner_max_tokens: int = knob(0, "Longest questioner completion (0 or over it = max_response_tokens).")
    responder_max_tokens: int = knob(0, "Longest responder completion (0 or over it = max_response_tokens).")
    verifier_max_tokens: int = knob(0, "Longest verifier completion (0 or over it = max_response_tokens).")


@dataclass
class PromptsConfig:
    style: str = knob(
        "release",
        "Role prompts: release = worded after the release's prompts (standalone questions, "
        "unlabelled documents, harder-question reasoning types with memory, a verifier that does "
        "not solve and allows 0.15% numeric tolerance); small = short prompts for small models.",
        choices=("release", "small"),
    )
    strict_record: bool = knob(
        True,
        "Read the questioner's record as the release does: the last fenced ```json block that "
        "parses, else the whole answer; anything else is a format error. Off: also bare or "
        "embedded JSON objects (structured outputs emit bare JSON).",
    )


@dataclass
class StructuredConfig:
    questioner: bool = knob(
        False, "Decode the questioner's record under a JSON schema (for small models)."
    )
    verifier: bool = knob(
        False, "Decode the verifier's decision under a JSON schema (for small models)."
    )
    responder: bool = knob(
        False,
        "Decode the responder's answer under a grammar: its last line is \"The correct answer is "
        "...\" (\"(X)\" for multiple choice, a number for DocMath). For small models.",
    )
    grounded: bool = knob(
        False,
        "Grounded records for small models (spell/grounded.py; with prompts.style small): the "
        "questioner quotes a sentence of its documents, asks about it and takes the answer from "
        "it; the responder quotes the sentence that answers before answering; the verifier says "
        "YES or NO. Grammars built from the shown documents enforce it.",
    )
    cloze_questions: bool = knob(
        False,
        "With grounded records, a QA or MC question is the cloze of its evidence sentence (Which "
        "name|year|date|number completes \"... ___ ...\"?), and a DocMath question blanks two numbers "
        "of one sentence and asks their difference or sum (the answer computed): the questioner chooses "
        "the fact, the grammar writes the question, so it is well formed by construction. For a small "
        "model that cannot yet turn a sentence into a question (paper: off).",
    )


@dataclass
class OptimConfig:
    lr: float = knob(2e-6, "AdamW learning rate (paper: 2e-6).", minimum=0, open_minimum=True)
    weight_decay: float = knob(0.01, "AdamW weight decay (paper: 0.01).", minimum=0)
    grad_clip: float = knob(1.0, "Gradient norm clip (paper: 1.0); 0 = off.", minimum=0)
    betas: tuple[float, float] = knob((0.9, 0.999), "AdamW betas.")
    eps: float = knob(1e-8, "AdamW epsilon.", minimum=0, open_minimum=True)
    schedule: str = knob(
        "constant",
        "Learning-rate schedule (paper: constant).",
        choices=("constant", "linear", "cosine"),
    )
    warmup_steps: int = knob(0, "Linear warm-up steps before the schedule.", minimum=0)


@dataclass
class LossConfig:
    clip: float = knob(0.2, "PPO ratio clip epsilon (paper: 0.2).")
    aggregation: str = knob(
        "token-mean",
        "token-mean: mean over all tokens of the batch (paper); seq-mean: mean per sequence, "
        "then over sequences.",
        choices=("token-mean", "seq-mean"),
    )
    per_role_mean: bool = knob(
        False,
        "Sum of the three roles' token-means (each role weighs the same whatever its length) "
        "instead of one token-mean over the whole update batch (release: one token-mean).",
    )
    advantage_std: str = knob(
        "unbiased",
        "Standard deviation in the group z-scores: unbiased (n - 1, torch.std, the release) or "
        "population (n; well defined for groups of one or two).",
        choices=("unbiased", "population"),
    )
    dual_clip: float = knob(
        3.0,
        "Dual-clip bound c for negative advantages: the per-token loss is at most -A x c "
        "(release: 3.0); 0 = off. Only matters off-policy (ratio > c).",
    )
    kl_coef: float = knob(0.0, "KL penalty to the reference model (paper: 0 = no reference).", minimum=0)
    kl_estimator: str = knob(
        "k3", "KL estimator (k3: exp(r)-1-r, unbiased and >= 0).", choices=("k1", "k2", "k3")
    )
    entropy_coef: float = knob(0.0, "Entropy bonus coefficient (paper: 0).", minimum=0)


@dataclass
class TrainerConfig:
    backend: str = knob(
        "deepspeed", "Training backend.", choices=("torch", "deepspeed")
    )
    zero_stage: int = knob(3, "DeepSpeed ZeRO stage (0-3).", minimum=0, maximum=3)
    device: str = knob("cuda", "Where the trainer runs.", choices=("cpu", "cuda"))
    num_gpus: int = knob(8, "GPUs on the node used by the run (0 on CPU; paper: 8 x A100-80G).", minimum=0)
    micro_batch_tokens: int = knob(
        32768, "Token budget of one micro-batch (sequences packed up to it).", minimum=1,
    )
    logprob_chunk_tokens: int = knob(
        1024, "Positions per chunk when computing log-probabilities (bounds logits memory).", minimum=1,
    )
    share_prefix: bool = knob(
        True,
        "Train a responder group's shared prompt once: one row holds the prompt and then every "
        "response, each seeing only the prompt and itself (token-mean loss; sdpa/eager attention).",
    )


@dataclass
class EngineConfig:
    name: str = knob("vllm", "Rollout engine.", choices=("hf", "vllm"))
    tensor_parallel: int = knob(1, "vLLM tensor-parallel size.", minimum=1)
    prefix_caching: bool = knob(True, "Reuse the KV cache of shared prompt prefixes.")
    sleep_mode: bool = knob(False, "vLLM sleep mode: free GPU memory while training.")
    gpu_memory_utilization: float = knob(0.6, "Share of GPU memory vLLM may take.", minimum=0, maximum=1, open_minimum=True)


@dataclass
class WarmupConfig:
    enabled: bool = knob(
        False,
        "Before self-play, a supervised pass over rule-made examples from the training corpus (a "
        "cloze question on a fact sentence, its span as the answer) in each role's own prompt and "
        "format (spell/warmup.py); for a small model that cannot start playing alone (paper: off).",
    )
    examples_per_role: int = knob(32, "Warm-up examples for the questioner and for the responder.", minimum=1)
    verifier_examples: int = knob(
        32,
        "Warm-up examples for the verifier, half YES (the reference itself) and half NO (another span "
        "of its kind). Telling a match from a mismatch takes far more than learning a format: SmolLM2 "
        "says one word to every pair after 128 and tells them apart after 512 (bench/verifier_probe.py).",
        minimum=1,
    )
    epochs: int = knob(1, "Passes over the warm-up examples.", minimum=1)
    batch_sequences: int = knob(8, "Warm-up examples per optimizer step.", minimum=1)
    lr: float = knob(5e-5, "Warm-up learning rate (then optim.lr).", minimum=0, open_minimum=True)


@dataclass
class EvalConfig:
    every_steps: int = knob(10, "Evaluate every this many steps (0 = never; paper: 10).", minimum=0)
    sets: list[str] = knob([], "Evaluation sets (paths or registered names).")
    samples: int = knob(8, "k: samples per question (mean@k and pass@k; paper: 8).", minimum=1)
    max_input_tokens: int = knob(
        16384, "Inputs longer than this are truncated in the middle (paper: 16K and 100K).", minimum=1,
    )
    at_start: bool = knob(True, "Evaluate at step 0 (the baseline).")
    judge: bool = knob(False, "Score QA by max(cover-EM, judge) with the verifier prompt.")
    judge_model_path: str = knob("", "Judge model folder (empty = the policy itself).")


@dataclass
class CheckpointConfig:
    every_steps: int = knob(10, "Checkpoint every this many steps (0 = only at the end).", minimum=0)
    keep_last: int = knob(2, "Checkpoints kept, newest first.", minimum=1)
    keep_best: bool = knob(True, "Also keep the checkpoint with the best evaluation mean.")


@dataclass
class RunOptions:
    steps: int = knob(70, "Optimizer steps of the run (paper: about 70).", minimum=1)
    time_budget_minutes: float = knob(
        0.0,
        "Stop after this many minutes of wall clock (0 = no limit): no step starts that would not "
        "finish in time, keeping room for the final evaluation and checkpoint.", minimum=0,
    )
    seed: int = knob(1234, "Seed of every random choice of the run.")
    report_to: list[str] = knob(
        [],
        "Experiment trackers that also get the run's metrics, under the dashboard's names (empty = none): "
        "tensorboard (OUT/tensorboard), wandb (offline in OUT/wandb unless WANDB_MODE and an API key are "
        "set), mlflow (OUT/mlruns unless MLFLOW_TRACKING_URI is set). Each needs its pip package.",
    )


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    tasks: TasksConfig = field(default_factory=TasksConfig)
    selfplay: SelfPlayConfig = field(default_factory=SelfPlayConfig)
    rewards: RewardsConfig = field(default_factory=RewardsConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    length_curriculum: LengthCurriculumConfig = field(default_factory=LengthCurriculumConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    prompts: PromptsConfig = field(default_factory=PromptsConfig)
    structured: StructuredConfig = field(default_factory=StructuredConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    warmup: WarmupConfig = field(default_factory=WarmupConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    run: RunOptions = field(default_factory=RunOptions)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe dict (tuples become lists)."""
        out: dict[str, Any] = {}
        for sec in fields(self):
            section = getattr(self, sec.name)
            out[sec.name] = {f.name: _jsonable(getattr(section, f.name)) for f in fields(section)}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: RunConfig | None = None) -> RunConfig:
        """Build a config from a (possibly partial) nested dict over `base` (default: defaults).

        Unknown sections or keys and values of the wrong type raise ConfigError naming the field.
        Values are type-checked, not range-checked: call validate() for that.
        """
        cfg = copy.deepcopy(base) if base is not None else cls()
        errors: list[ConfigError] = []
        if not isinstance(data, Mapping):
            raise ConfigError("<root>", "expected a table / object of sections")
        sections = {f.name for f in fields(cls)}
        for sec_name, sec_data in data.items():
            if sec_name not in sections:
                errors.append(ConfigError(str(sec_name), "unknown section"))
                continue
            if not isinstance(sec_data, Mapping):
                errors.append(ConfigError(sec_name, "expected a table / object of fields"))
                continue
            for key, value in sec_data.items():
                try:
                    _set_field(cfg, f"{sec_name}.{key}", value)
                except ConfigError as exc:
                    errors.append(exc)
        _raise_all(errors)
        return cfg

    def validate(self, model_max_positions: int | None = None) -> RunConfig:
        """Raise ConfigError for the first bad value (all of them in `.errors`); return self."""
        _raise_all(validate(self, model_max_positions))
        return self

    def get(self, dotted: str) -> Any:
        sec, key = _split(dotted)
        return getattr(getattr(self, sec), key)


# ---------------------------------------------------------------------------------------------
# Presets, loading, overrides
# ---------------------------------------------------------------------------------------------


def preset(name: str) -> RunConfig:
    """`paper-7b` (the paper's setting, 16K context) or `cpu-demo` (SmolLM2-135M on a CPU)."""
    if name == "paper-7b":
        return RunConfig()
    if name == "cpu-demo":
        return with_overrides(
            RunConfig(),
            {
                "model.path": "var/models/SmolLM2-135M-Instruct",
                "model.dtype": "float32",
                # Prompts stay under 2K tokens here, where checkpointing costs more time than it saves.
                "model.gradient_checkpointing": False,
                # Two documents per question, one new per follow-up, and documents dropped (new
                # first) rather than clusters skipped when a prompt is over the limit: a 135M model
                # reads two short documents; it does not read five.
                "tasks.docs_per_question": 2,
                "memory.new_docs_per_round": 1,
                "memory.overflow": "fit",
                # Three questions per task and one generation batch: a step is 9 questions, 36
                # responder rollouts and 48 verifier votes (QA only), about a minute on 2 cores.
                "selfplay.questions_per_task": 3,
                "selfplay.group_size": 4,
                "selfplay.verifier_samples": 4,
                "selfplay.batch_groups": 9,
                "selfplay.max_generation_batches": 1,
                # The release's fixed verifier count, int(9 x 4 x 0.125 / 4), is 1 group here:
                # half of the eligible groups instead.
                "selfplay.verifier_share": 0.5,
                "selfplay.verifier_batch": "share",
                # MC letters and DocMath numbers are judged exactly by the rule; the verifier judges
                # free-form QA, where the rule (cover-EM) misses paraphrases.
                "selfplay.verifier_tasks": ["doc_general_qa"],
                # A record that is not a question about its documents (a fragment, schema text, an
                # answer found nowhere in them) is a format error, not a hard question to reward.
                "selfplay.question_quality_filter": True,
                # A 135M responder's four answers mostly score alike: without this, a step whose
                # groups all agree trains nothing at all (0 optimizer steps in 5 were seen).
                "selfplay.train_without_varied_groups": True,
                # SmolLM2 starts by copying the prompts' examples and placeholders and saying YES to
                # every answer: a short supervised pass on rule-made examples from the corpus first.
                "warmup.enabled": True,
                # As shipped SmolLM2 says YES to every answer, after 128 examples NO to every one; after
                # 512 it tells the reference from another answer of its kind on held-out pairs.
                "warmup.verifier_examples": 512,
                # The context is the prompt limit (no length stages): the documents are short.
                "length_curriculum.enabled": False,
                "sampling.max_response_tokens": 160,
                "sampling.max_prompt_tokens": 2048,
                # Grounded records are short: evidence + question + answer, an answer line, a word.
                "sampling.questioner_max_tokens": 112,
                "sampling.responder_max_tokens": 32,
                "sampling.verifier_max_tokens": 4,
                "prompts.style": "small",
                # The small style's records are labelled lines (or JSON), which the strict reading refuses.
                "prompts.strict_record": False,
                # Grammars built from each prompt's documents: the questioner quotes one of their
                # sentences and answers from it, the responder ends with its answer line, the
                # verifier says YES or NO (spell/grounded.py).
                "structured.questioner": True,
                "structured.verifier": True,
                "structured.responder": True,
                "structured.grounded": True,
                "structured.cloze_questions": True,
                "optim.lr": 1e-5,
                # Three questioner samples per task: the population std (the unbiased one over so few
                # samples inflates the advantages).
                "loss.advantage_std": "population",
                # As before: each role's token-mean counts the same; paper-7b takes the release's
                # single token-mean over the batch.
                "loss.per_role_mean": True,
                "trainer.backend": "torch",
                "trainer.zero_stage": 0,
                "trainer.device": "cpu",
                "trainer.num_gpus": 0,
                "trainer.micro_batch_tokens": 8192,
                "trainer.logprob_chunk_tokens": 512,
                "engine.name": "hf",
                "engine.prefix_caching": True,
                "eval.every_steps": 5,
                "eval.samples": 2,
                "eval.max_input_tokens": 2048,
                "checkpoint.every_steps": 5,
                "run.steps": 20,
            },
        )
    raise ConfigError("preset", f"unknown preset {name!r} (choices: {', '.join(PRESETS)})")


def load_config(path: str | Path) -> RunConfig:
    """Read a TOML or JSON file: sections of fields, optionally `preset = "cpu-demo"` on top.

    Raises ConfigError (field "<file>" for unreadable files) on any problem; the result is not
    range-validated (call `.validate()`).
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError("<file>", f"cannot read {p}: {exc.strerror or exc}") from None
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(raw.decode("utf-8"))
        else:
            data = tomllib.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:  # TOMLDecodeError / JSONDecodeError
        raise ConfigError("<file>", f"{p.name} is not valid {p.suffix.lstrip('.') or 'TOML'}: {exc}") from None
    return config_from_mapping(data)


def config_from_mapping(data: Mapping[str, Any]) -> RunConfig:
    """A loaded file's content: optional top-level `preset`, then sections overriding it."""
    if not isinstance(data, Mapping):
        raise ConfigError("<root>", "expected a table / object of sections")
    data = dict(data)
    name = data.pop("preset", None)
    if name is not None and not isinstance(name, str):
        raise ConfigError("preset", "expected a preset name")
    base = preset(name) if name else RunConfig()
    return RunConfig.from_dict(data, base=base)


def with_overrides(cfg: RunConfig, overrides: Mapping[str, Any]) -> RunConfig:
    """A copy of `cfg` with dotted fields replaced: {"selfplay.group_size": 4}."""
    out = copy.deepcopy(cfg)
    errors: list[ConfigError] = []
    for dotted, value in overrides.items():
        try:
            _set_field(out, dotted, value)
        except ConfigError as exc:
            errors.append(exc)
    _raise_all(errors)
    return out


# ---------------------------------------------------------------------------------------------
# Field descriptions (for the web form)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldInfo:
    name: str  # dotted: "selfplay.group_size"
    section: str
    key: str
    type: str  # "int", "float", "bool", "str", "int | None", "list[int]", ...
    default: Any  # JSON-safe
    help: str
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    min_open: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "section": self.section,
            "key": self.key,
            "type": self.type,
            "default": self.default,
            "help": self.help,
            "choices": list(self.choices) if self.choices is not None else None,
            "min": self.minimum,
            "max": self.maximum,
            "min_open": self.min_open,
        }

    def range_problem(self, value: Any) -> str | None:
        """Why `value` is outside the knob's declared bounds; None inside (or unbounded, or None)."""
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        if isinstance(value, float) and not math.isfinite(value):  # an int is finite however large
            return f"must be a finite number (got {value!r})"
        low, high = self.minimum, self.maximum
        below = low is not None and (value <= low if self.min_open else value < low)
        above = high is not None and value > high
        if not (below or above):
            return None
        if low is not None and high is not None:
            return f"must be in {'(' if self.min_open else '['}{low:g}, {high:g}] (got {value!r})"
        if low is not None:
            return f"must be {'>' if self.min_open else '>='} {low:g} (got {value!r})"
        return f"must be <= {high:g} (got {value!r})"


def describe_fields(cfg: RunConfig | None = None) -> dict[str, FieldInfo]:
    """Every knob by dotted name, in section order. `default` comes from `cfg` when given."""
    cfg = cfg if cfg is not None else RunConfig()
    out: dict[str, FieldInfo] = {}
    for sec in fields(RunConfig):
        section = getattr(cfg, sec.name)
        for f in fields(section):
            name = f"{sec.name}.{f.name}"
            out[name] = FieldInfo(
                name=name,
                section=sec.name,
                key=f.name,
                type=_type_name(f),
                default=_jsonable(getattr(section, f.name)),
                help=f.metadata.get("help", ""),
                choices=f.metadata.get("choices"),
                minimum=f.metadata.get("min"),
                maximum=f.metadata.get("max"),
                min_open=bool(f.metadata.get("min_open")),
            )
    return out


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


def validate(cfg: RunConfig, model_max_positions: int | None = None) -> list[ConfigError]:
    """Every bad value of `cfg`, each as ConfigError(dotted field, reason); [] when all is well.

    `model_max_positions` is the model's limit when known (the config's `model.max_positions`
    wins when set); prompt + response must fit into it.
    """
    errs: list[ConfigError] = []

    def bad(name: str, reason: str) -> None:
        errs.append(ConfigError(name, reason))

    # Types first (fields set by hand may hold anything): range checks below assume them.
    infos = describe_fields(cfg).values()
    for info in infos:
        try:
            _coerce(cfg.get(info.name), info.type, info.name)
        except ConfigError as exc:
            errs.append(exc)
    if errs:
        return errs
    for info in infos:
        value = cfg.get(info.name)
        if info.choices is not None and value not in info.choices:
            bad(info.name, f"unknown value {value!r} (choices: {', '.join(map(str, info.choices))})")
        problem = info.range_problem(value)  # the bounds each knob() declares
        if problem:
            bad(info.name, problem)

    if not cfg.model.path.strip():
        bad("model.path", "required: a local Hugging Face model folder")

    mix = cfg.tasks.mix
    for task, weight in mix.items():
        if task not in TASKS:
            bad("tasks.mix", f"unknown task {task!r} (choices: {', '.join(TASKS)})")
        elif not (weight >= 0) or not math.isfinite(weight):
            bad("tasks.mix", f"weight of {task} must be >= 0 (got {weight!r})")
    if not any(w > 0 for t, w in mix.items() if t in TASKS and math.isfinite(w)):
        bad("tasks.mix", "no task with a positive weight")

    if not (cfg.selfplay.bad_questioner_ratio >= 0) or not math.isfinite(cfg.selfplay.bad_questioner_ratio):
        bad("selfplay.bad_questioner_ratio", f"must be >= 0 (got {cfg.selfplay.bad_questioner_ratio!r})")
    if cfg.selfplay.verifier_model.strip() and not cfg.selfplay.verifier_enabled:
        bad("selfplay.verifier_model", "an external verifier needs selfplay.verifier_enabled")
    if cfg.selfplay.mode == "rlvr":
        rlvr_set = cfg.selfplay.rlvr_set.strip()
        if not rlvr_set:
            bad("selfplay.rlvr_set", "the RLVR baseline needs a QA file to train on")
        elif any(_same_path(rlvr_set, s) for s in cfg.eval.sets):
            bad("selfplay.rlvr_set", f"{rlvr_set} is one of eval.sets: training on it would score the test set")

    if cfg.rewards.agreement_min > cfg.rewards.agreement_max:
        bad("rewards.agreement_min", "must not exceed rewards.agreement_max")
    for name in ("rewards.ungrounded_penalty", "rewards.format_penalty"):
        v = cfg.get(name)
        if not (-1e6 < v <= 0):
            bad(name, f"must be <= 0, a penalty (got {v!r})")


    stages = cfg.length_curriculum.stages
    if not stages:
        bad("length_curriculum.stages", "needs at least one stage")
    elif any(s <= 0 for s in stages):
        bad("length_curriculum.stages", "every stage must be > 0 tokens")
    elif any(b <= a for a, b in zip(stages, stages[1:])):
        bad("length_curriculum.stages", "stages must increase")
    elif cfg.length_curriculum.enabled and stages[-1] > cfg.sampling.max_prompt_tokens:
        bad(
            "length_curriculum.stages",
            f"last stage {stages[-1]} exceeds sampling.max_prompt_tokens "
            f"{cfg.sampling.max_prompt_tokens}",
        )
    for task in cfg.selfplay.verifier_tasks:
        if task not in TASKS:
            bad("selfplay.verifier_tasks", f"unknown task {task!r} (choices: {', '.join(TASKS)})")

    for role in ("questioner", "responder", "verifier"):
        name = f"sampling.{role}_max_tokens"
        v = cfg.get(name)
        if not (isinstance(v, int) and v >= 0):
            bad(name, f"must be 0 (= max_response_tokens) or a token count (got {v!r})")
    if cfg.structured.cloze_questions and not cfg.structured.grounded:
        bad("structured.cloze_questions", "cloze questions are a form of grounded record: set structured.grounded = true")
    if cfg.structured.grounded and cfg.prompts.style != "small":
        bad("structured.grounded", "grounded records are worded by the small prompt style: set prompts.style = small")

    limit = cfg.model.max_positions if cfg.model.max_positions is not None else model_max_positions
    if limit is not None:
        need = cfg.sampling.max_prompt_tokens + cfg.sampling.max_response_tokens
        if need > limit:
            bad(
                "sampling.max_prompt_tokens",
                f"prompt + response = {cfg.sampling.max_prompt_tokens} + "
                f"{cfg.sampling.max_response_tokens} = {need} tokens exceeds the model's "
                f"{limit} positions",
            )
        need = cfg.eval.max_input_tokens + cfg.sampling.max_response_tokens
        if need > limit:
            bad(
                "eval.max_input_tokens",
                f"eval input + response = {need} tokens exceeds the model's {limit} positions",
            )

    for i, b in enumerate(cfg.optim.betas):
        if not (0 <= b < 1):
            bad("optim.betas", f"beta{i + 1} must be in [0, 1) (got {b!r})")

    clip = cfg.loss.clip
    if not (0 < clip < 1):
        bad("loss.clip", f"must be in (0, 1) (got {clip!r})")
    dual = cfg.loss.dual_clip
    if not (dual == 0 or (1 < dual < 1e6)):
        bad("loss.dual_clip", f"must be 0 (off) or > 1 (got {dual!r})")

    if cfg.trainer.device == "cuda" and cfg.trainer.num_gpus < 1:
        bad("trainer.num_gpus", "device cuda needs at least one GPU")

    if cfg.trainer.device == "cuda" and cfg.engine.tensor_parallel > max(cfg.trainer.num_gpus, 1):
        bad("engine.tensor_parallel", "larger than trainer.num_gpus")

    if cfg.eval.judge:
        bad("eval.judge", "the evaluation judge is not implemented yet: QA is scored by cover-EM (leave eval.judge off)")
    for name in cfg.run.report_to:
        if name not in REPORT_TO:
            bad("run.report_to", f"unknown tracker {name!r} (choices: {', '.join(REPORT_TO)})")
    return errs


def role_max_tokens(cfg: RunConfig, role: str) -> int:
    """The longest completion of `role` ("questioner", "responder", "verifier"): its own limit,
    never above sampling.max_response_tokens (the ceiling of every role)."""
    ceiling = cfg.sampling.max_response_tokens
    return min(getattr(cfg.sampling, f"{role}_max_tokens") or ceiling, ceiling)


# ---------------------------------------------------------------------------------------------
# Internals
# ---------------------------------------------------------------------------------------------


def _same_path(a: str, b: str) -> bool:
    """Whether two paths name the same file (lexically, after ~ and ..; no file is read)."""
    try:
        return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
    except (OSError, RuntimeError):
        return a == b


def _raise_all(errors: list[ConfigError]) -> None:
    if errors:
        first = errors[0]
        first.errors = list(errors)
        raise first


def _split(dotted: str) -> tuple[str, str]:
    if not isinstance(dotted, str) or dotted.count(".") != 1:
        raise ConfigError(str(dotted), "expected a dotted name section.field")
    sec, key = dotted.split(".")
    if sec not in _SECTIONS:
        raise ConfigError(dotted, f"unknown section {sec!r}")
    if key not in _SECTIONS[sec]:
        raise ConfigError(dotted, "unknown key")
    return sec, key


def _set_field(cfg: RunConfig, dotted: str, value: Any) -> None:
    sec, key = _split(dotted)
    type_name = _SECTIONS[sec][key]
    setattr(getattr(cfg, sec), key, _coerce(value, type_name, dotted))


def _type_name(f: Any) -> str:
    t = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    return " ".join(t.split())


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _coerce(value: Any, type_name: str, name: str) -> Any:
    """Check `value` against a field type; return it converted (int -> float, list -> tuple)."""

    def fail(expected: str) -> ConfigError:
        return ConfigError(name, f"expected {expected} (got {type(value).__name__} {value!r})")

    if type_name == "int | None":
        if value is None:
            return None
        return _coerce(value, "int", name)
    if type_name == "bool":
        if isinstance(value, bool):
            return value
        raise fail("true or false")
    if type_name == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise fail("an integer")
    if type_name == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            v = float(value)
            if math.isnan(v):
                raise fail("a number")
            return v
        raise fail("a number")
    if type_name == "str":
        if isinstance(value, str):
            return value
        raise fail("a string")
    if type_name in ("list[int]", "list[str]"):
        if not isinstance(value, (list, tuple)):
            raise fail("a list")
        inner = type_name[5:-1]
        return [_coerce(v, inner, name) for v in value]
    if type_name == "tuple[float, float]":
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise fail("a pair of numbers")
        return tuple(_coerce(v, "float", name) for v in value)
    if type_name == "dict[str, float]":
        if not isinstance(value, Mapping):
            raise fail("a table of name = number")
        return {str(k): _coerce(v, "float", f"{name}.{k}") for k, v in value.items()}
    raise ConfigError(name, f"unsupported field type {type_name}")  # a bug in this module


_SECTIONS: dict[str, dict[str, str]] = {
    sec.name: {f.name: _type_name(f) for f in fields(sec.default_factory())}  # type: ignore[misc]
    for sec in fields(RunConfig)
}
