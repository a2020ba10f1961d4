"""The run form: every knob of spell's RunConfig, rendered from describe_fields() and grouped by
section, over a preset; validated by RunConfig itself, with its messages on the fields they name."""

from __future__ import annotations

import functools
import json
from typing import Any

from django import forms
from django.conf import settings

from spell.config import ConfigError, RunConfig, describe_fields, preset as spell_preset
from webapp.accounts.access import member_teams
from webapp.corpora.models import Corpus, EvalSet
from webapp.runs import services
from webapp.runs.models import ModelEntry

class IdChoicesField(forms.ModelMultipleChoiceField):
    """A multiple choice of rows by id that refuses an id no database column can hold as an unknown
    choice: Django's own check queries `pk__in` with it, and SQLite raises OverflowError there
    (PostgreSQL a DataError), which would answer a 500 to a tampered form."""

    def _check_values(self, value):
        for pk in value or ():
            try:
                number = int(pk)
            except (TypeError, ValueError):
                continue  # not a number: Django's own check refuses it
            if not -(2**63) <= number < 2**63:
                raise forms.ValidationError(self.error_messages["invalid_choice"], code="invalid_choice",
                                            params={"value": pk})
        return super()._check_values(value)


SECTIONS: dict[str, tuple[str, str]] = {
    "model": ("Model", "How the chosen model is loaded (the folder itself comes from the registered model)."),
    "tasks": ("Tasks", "Which task types the questioner poses and how many documents a question sees."),
    "selfplay": ("Self-play", "Questioner, responder and verifier rollouts per step and how the update batch is assembled."),
    "rewards": ("Rewards", "How the questioner and verifier are rewarded and which verifier groups are trained on."),
    "memory": ("History memory", "Remembered questions per (task, document set) that make follow-up questions harder."),
    "length_curriculum": ("Length curriculum", "Context length grows stage by stage as the responder gets better."),
    "sampling": ("Sampling", "Decoding settings shared by every role, and each role's longest completion."),
    "prompts": ("Prompts", "The role prompts' wording (the release's, or short ones for small models) and how records are read."),
    "structured": ("Structured decoding", "Grammars and JSON schemas that help small models write valid, grounded records."),
    "optim": ("Optimizer", "AdamW and the learning-rate schedule."),
    "loss": ("Loss", "The clipped policy-gradient loss."),
    "trainer": ("Trainer", "Where and how the update runs."),
    "engine": ("Rollout engine", "What generates the rollouts."),
    "warmup": ("Warm-up", "A supervised pass over rule-made examples from the corpus before self-play (for small models)."),
    "eval": ("Evaluation", "Periodic evaluation on held-out sets."),
    "checkpoint": ("Checkpoints", "How often the run saves a resumable checkpoint and how many it keeps."),
    "run": ("Run", "Length, wall-clock budget and seed of the run, and the experiment trackers that also get its metrics."),
}


def form_name(dotted: str) -> str:
    return dotted.replace(".", "__")


def dotted_name(name: str) -> str:
    return name.replace("__", ".")


# --- fields for the non-scalar knobs --------------------------------------------------------------


class _TextKnob(forms.CharField):
    """A knob typed as text: lists and pairs as `a, b, c`, a mix as `name=weight, ...`."""

    def __init__(self, kind: str, **kwargs):
        self.kind = kind
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> Any:
        text = (super().to_python(value) or "").strip()
        if "\x00" in text:  # checked on the text: CharField's own check runs on the parsed list, which hides it
            raise forms.ValidationError("Null characters are not allowed.", code="null_characters_not_allowed")
        parts = [p.strip() for p in text.replace("\n", ",").split(",") if p.strip()]
        try:
            if self.kind == "list[int]":
                return [int(p) for p in parts]
            if self.kind == "list[str]":
                return parts
            if self.kind == "tuple[float, float]":
                if len(parts) != 2:
                    raise forms.ValidationError("Enter two numbers separated by a comma.")
                return [float(p) for p in parts]
            if self.kind == "dict[str, float]":
                out = {}
                for p in parts:
                    key, sep, weight = p.partition("=")
                    if not sep or not key.strip():
                        raise forms.ValidationError(f"{p!r}: write name=weight.")
                    out[key.strip()] = float(weight)
                return out
        except ValueError:
            raise forms.ValidationError(
                "Enter whole numbers separated by commas." if self.kind == "list[int]" else "Enter numbers where numbers are expected."
            ) from None
        raise forms.ValidationError(f"unsupported kind {self.kind}")

    def prepare_value(self, value: Any) -> Any:
        return to_text(value)

    def validate(self, value: Any) -> None:  # an empty list is a value (eval.sets = [])
        pass


def to_text(value: Any) -> Any:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_num(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_num(v) for v in value)
    return value


def _num(v: Any) -> str:
    return repr(v) if isinstance(v, float) else str(v)


# --- bounds of the numeric knobs (min / max / step on the inputs) -------------------------------


@functools.lru_cache(maxsize=1)
def knob_bounds() -> dict[str, dict[str, float]]:
    """{dotted knob: {"min": lo, "max": hi}} for the inputs' min / max attributes, from the bounds
    each `knob()` declares in spell/config.py (validate() enforces the same ones). The browser does
    not enforce them (the form is `novalidate`): validate() stays the one judge, with its messages in
    the error summary; the attributes guide typing and spinners."""
    out: dict[str, dict[str, float]] = {}
    for name, info in describe_fields().items():
        bounds = {key: value for key, value in (("min", info.minimum), ("max", info.maximum)) if value is not None}
        if bounds:
            if info.min_open:
                bounds["positive"] = True  # above the minimum, not equal to it
            out[name] = bounds
    return out


def _number_attrs(dotted: str, whole: bool) -> dict[str, str]:
    bounds = knob_bounds().get(dotted, {})
    attrs = {"step": "1" if whole else "any"}
    lo = bounds.get("min")
    if lo is not None and whole and bounds.get("positive") and lo < 1:
        lo = 1
    if lo is not None:
        attrs["min"] = _num(int(lo) if whole else lo)
    if bounds.get("max") is not None:
        attrs["max"] = _num(int(bounds["max"]) if whole else bounds["max"])
    return attrs


def knob_field(info) -> forms.Field:
    common = {"label": info.key.replace("_", " "), "help_text": info.help}
    if info.choices:
        return forms.TypedChoiceField(choices=[(c, c) for c in info.choices], coerce=str, **common)
    if info.type == "bool":
        return forms.BooleanField(required=False, **common)
    if info.type == "int":
        return forms.IntegerField(widget=forms.NumberInput(attrs=_number_attrs(info.name, True)), **common)
    if info.type == "int | None":
        return forms.IntegerField(required=False, widget=forms.NumberInput(attrs=_number_attrs(info.name, True)), **common)
    if info.type == "float":
        return forms.FloatField(widget=forms.NumberInput(attrs=_number_attrs(info.name, False)), **common)
    if info.type == "str":
        return forms.CharField(required=False, strip=True, **common)
    return _TextKnob(info.type, required=False, **common)


def form_values(cfg: RunConfig) -> dict[str, Any]:
    """Initial values of every knob field for a config (presets, clones)."""
    return {form_name(name): info.default for name, info in describe_fields(cfg).items()
            if name not in services.MODEL_FIELDS and name not in services.SERVER_PATH_FIELDS}


def queue_for_preset(name: str) -> dict[str, Any]:
    """The queue a preset should train on, and why: {"queue", "note"}.

    A CPU preset takes `cpu`. A CUDA preset needs `trainer.num_gpus` GPUs: the first GPU queue that
    an online worker with that many GPUs (its NVML inventory) consumes, else the first GPU queue, the
    note saying that no worker can take the run yet.
    """
    from webapp.fleet.services import gpus_serving

    cfg = spell_preset(name)
    choices = services.queue_choices()
    if cfg.trainer.device != "cuda":
        return {"queue": "cpu", "note": f"{name} trains on a CPU: the cpu queue."}
    need = max(cfg.trainer.num_gpus, 1)
    gpu_queues = [q for q in choices if q != "cpu"]
    if not gpu_queues:
        return {"queue": choices[0], "note": f"{name} needs {need} CUDA GPU(s), and no GPU queue is configured (RUN_GPU_QUEUES)."}
    for q in gpu_queues:
        have = gpus_serving(q)
        if have is not None and have >= need:
            return {"queue": q, "note": f"{name} needs {need} CUDA GPU(s): {q} has an online worker with {have}."}
    return {"queue": gpu_queues[0], "note": f"{name} needs {need} CUDA GPU(s): no online worker with that many "
                                            f"serves a GPU queue yet ({gpu_queues[0]} chosen; check the fleet)."}


def preset_values_json() -> str:
    """What the preset selector fills in, per preset: {preset: {field: text value}}, the queue
    that fits the preset included (`queue`), and `_queue_note` saying why."""
    out = {}
    for name in services.PRESETS:
        fit = queue_for_preset(name)
        out[name] = {k: to_text(v) for k, v in form_values(spell_preset(name)).items()}
        out[name].update({"queue": fit["queue"], "_queue_note": fit["note"]})
    return json.dumps(out)


# --- the form ---------------------------------------------------------------------------------------


AUDIT_FIELDS = ("review_share", "double_share", "false_accept_alarm")
# The fields a first run needs, shown open at the top; every other section starts collapsed.
ESSENTIAL_FIELDS = ("name", "preset", "model_entry", "corpus", "queue")
ESSENTIAL_KNOBS = ("run__steps", "selfplay__group_size")


class RunForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="A name for the run, shown in lists and charts.")
    preset = forms.ChoiceField(
        choices=[(p, p) for p in services.PRESETS],
        help_text="The base values: cpu-demo (SmolLM2-135M on a CPU) or paper-7b (the paper's 7B setting).",
    )
    model_entry = forms.ModelChoiceField(
        queryset=ModelEntry.objects.none(), label="Model",
        help_text="A model admins shared, or one your team registered from a run's checkpoint."
    )
    corpus = forms.ModelChoiceField(queryset=Corpus.objects.none(), help_text="A ready corpus of one of your teams.")
    queue = forms.ChoiceField(help_text="Where the run trains: cpu, or a GPU queue (gpu.<name>).")
    eval_sets = IdChoicesField(
        queryset=EvalSet.objects.none(), required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Held-out sets of the corpus's team the run evaluates on at step 0 and every eval.every_steps "
                  "(one curve per set on the run page). Never trained on.",
    )
    # Human review of the verifier (webapp.audits); stored on the run, not in the spell config.
    review_share = forms.FloatField(
        required=False, min_value=0, max_value=1, initial=0.1, label="Review share",
        help_text="Share of verifier judgments queued for human review (disagreements and split votes are oversampled).",
    )
    double_share = forms.FloatField(
        required=False, min_value=0, max_value=1, initial=0.2, label="Double-annotation share",
        help_text="Share of reviewed items given to two annotators, for their agreement (Cohen's kappa).",
    )
    false_accept_alarm = forms.FloatField(
        required=False, min_value=0, max_value=1, initial=0.2, label="False-accept alarm",
        help_text="Raise an alarm when the lower 95% bound of the verifier's false-accept rate passes this.",
    )

    def __init__(self, *args, user, config: RunConfig | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["model_entry"].queryset = ModelEntry.objects.visible_to(user).select_related("team").order_by("name")
        self.fields["model_entry"].label_from_instance = lambda m: f"{m.name} ({m.team})" if m.team_id else m.name
        self.fields["corpus"].queryset = (
            Corpus.objects.filter(team__in=member_teams(user), status=Corpus.Status.READY).select_related("team").order_by("name")
        )
        self.fields["corpus"].label_from_instance = lambda c: f"{c.name} ({c.team})"
        self.fields["queue"].choices = [(q, q) for q in services.queue_choices()]
        self.fields["eval_sets"].queryset = (
            EvalSet.objects.filter(team__in=member_teams(user), status=EvalSet.Status.READY).select_related("team").order_by("name")
        )
        self.fields["eval_sets"].label_from_instance = lambda s: f"{s.name} ({s.team}, {s.items} items)"
        # A new run starts on the default model and the corpus asked for (?corpus=ID, from a corpus
        # page) or else the newest ready one; the queue fits the preset. The person may change all.
        if not self.is_bound:
            models = self.fields["model_entry"].queryset
            default_model = models.filter(name=settings.DEFAULT_MODEL_NAME).first() or models.first()
            ready = self.fields["corpus"].queryset
            asked = self.initial.get("corpus")
            chosen = (ready.filter(pk=asked).first() if str(asked or "").isdigit() else None) or ready.order_by("-created_at").first()
            if default_model is not None:
                self.initial.setdefault("model_entry", default_model.pk)
            if chosen is None:
                self.initial.pop("corpus", None)
            else:
                self.initial["corpus"] = chosen.pk
                # the bundled held-out sets, when loaded, come with a first run on the sample corpus
                from webapp.bootstrap import SAMPLE_EVAL_SETS

                samples = self.fields["eval_sets"].queryset.filter(team=chosen.team, name__in=SAMPLE_EVAL_SETS)
                self.initial.setdefault("eval_sets", list(samples.values_list("pk", flat=True)))
                self.initial.setdefault("name", f"{self.initial.get('preset') or 'cpu-demo'} on {chosen.name}"[:200])
            if self.initial.get("queue") not in services.queue_choices():
                self.initial["queue"] = queue_for_preset(self.initial.get("preset") or "cpu-demo")["queue"]
        base = config or spell_preset(self.initial.get("preset") or "cpu-demo")
        self.knob_names: list[str] = []
        for name, info in describe_fields(base).items():
            if name in services.MODEL_FIELDS or name in services.SERVER_PATH_FIELDS:
                continue
            fname = form_name(name)
            self.fields[fname] = knob_field(info)
            self.initial.setdefault(fname, info.default)
            self.knob_names.append(fname)
        self.config: RunConfig | None = None

    def essentials(self) -> list[dict[str, Any]]:
        """The open part of the form: run, preset, model, corpus, queue, then steps and group size."""
        rows = [{"field": self[name], "dotted": ""} for name in ESSENTIAL_FIELDS]
        rows += [{"field": self[name], "dotted": dotted_name(name)} for name in ESSENTIAL_KNOBS if name in self.fields]
        return rows

    def sections(self) -> list[dict[str, Any]]:
        """The collapsed sections (the essentials' knobs left out); `open` when one of its fields has an error."""
        groups: dict[str, list] = {}
        for fname in self.knob_names:
            if fname in ESSENTIAL_KNOBS:
                continue
            groups.setdefault(fname.split("__", 1)[0], []).append({"field": self[fname], "dotted": dotted_name(fname)})
        return [
            {"key": key, "title": SECTIONS.get(key, (key, ""))[0], "help": SECTIONS.get(key, ("", ""))[1], "fields": fields,
             "open": any(item["field"].errors for item in fields)}
            for key, fields in groups.items()
        ]

    def audit_fields(self) -> list:
        return [self[name] for name in AUDIT_FIELDS]

    def error_summary(self) -> list[dict[str, str]]:
        """Every error of a bound form, in page order: {"label", "message", "target"}; `target` is the
        id of the input to focus (a fieldset's for the evaluation sets: its first box; "" for a
        form-wide error)."""
        out = [{"label": "", "message": str(message), "target": ""} for message in self.non_field_errors()]
        order = list(ESSENTIAL_FIELDS) + list(ESSENTIAL_KNOBS) + ["eval_sets", *AUDIT_FIELDS] + [
            name for name in self.knob_names if name not in ESSENTIAL_KNOBS]
        for name in order:
            if name not in self.errors or name not in self.fields:
                continue
            bound = self[name]
            target = "section-eval-sets" if name == "eval_sets" else bound.auto_id
            label = dotted_name(name) if name in self.knob_names else str(bound.label)
            for message in bound.errors:
                out.append({"label": label, "message": str(message), "target": target})
        return out

    def audit_settings(self) -> dict[str, float]:
        """The review settings given; an empty field takes its default (webapp.audits.sampling)."""
        return {key: self.cleaned_data[key] for key in AUDIT_FIELDS if self.cleaned_data.get(key) is not None}

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data  # field errors first; the config check needs every value
        corpus = data.get("corpus")
        foreign = [s.name for s in data.get("eval_sets") or () if corpus is not None and s.team_id != corpus.team_id]
        if foreign:
            self.add_error("eval_sets", f"Not of the corpus's team ({corpus.team}): {', '.join(foreign)}.")
            return data
        model = data.get("model_entry")
        if model is not None and corpus is not None and model.team_id not in (None, corpus.team_id):
            self.add_error("model_entry", f"{model.name} is a model of team {model.team}, not of the corpus's team ({corpus.team}).")
            return data
        values = {dotted_name(f): data.get(f) for f in self.knob_names}
        try:
            self.config = services.build_config(data["preset"], values, data["model_entry"], data["queue"])
        except ConfigError as exc:
            for err in exc.errors:
                parts = err.field.split(".")
                fname = form_name(".".join(parts[:2])) if len(parts) >= 2 else err.field
                if fname in self.fields:
                    self.add_error(fname, err.reason)
                else:
                    self.add_error(None, f"{err.field}: {err.reason}")
        return data
