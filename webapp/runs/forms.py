"""The run form: every knob of spell's RunConfig, rendered from describe_fields() and grouped by
section, over a preset; validated by RunConfig itself, with its messages on the fields they name."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.conf import settings

from spell.config import ConfigError, RunConfig, describe_fields, preset as spell_preset
from webapp.accounts.access import member_teams
from webapp.corpora.models import Corpus, EvalSet
from webapp.runs import services
from webapp.runs.models import ModelEntry

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
    "eval": ("Evaluation", "Periodic evaluation on held-out sets."),
    "checkpoint": ("Checkpoints", "How often the run saves a resumable checkpoint and how many it keeps."),
    "run": ("Run", "Length, wall-clock budget and seed of the run."),
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


def knob_field(info) -> forms.Field:
    common = {"label": info.key.replace("_", " "), "help_text": info.help}
    if info.choices:
        return forms.TypedChoiceField(choices=[(c, c) for c in info.choices], coerce=str, **common)
    if info.type == "bool":
        return forms.BooleanField(required=False, **common)
    if info.type == "int":
        return forms.IntegerField(**common)
    if info.type == "int | None":
        return forms.IntegerField(required=False, **common)
    if info.type == "float":
        return forms.FloatField(widget=forms.NumberInput(attrs={"step": "any"}), **common)
    if info.type == "str":
        return forms.CharField(required=False, strip=True, **common)
    return _TextKnob(info.type, required=False, **common)


def form_values(cfg: RunConfig) -> dict[str, Any]:
    """Initial values of every knob field for a config (presets, clones)."""
    return {form_name(name): info.default for name, info in describe_fields(cfg).items()
            if name not in services.MODEL_FIELDS and name not in services.SERVER_PATH_FIELDS}


def preset_values_json() -> str:
    """What the preset selector fills in, per preset: {preset: {field: text value}}."""
    out = {}
    for name in services.PRESETS:
        out[name] = {k: to_text(v) for k, v in form_values(spell_preset(name)).items()}
    return json.dumps(out)


# --- the form ---------------------------------------------------------------------------------------


AUDIT_FIELDS = ("review_share", "double_share", "false_accept_alarm")


class RunForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="A name for the run, shown in lists and charts.")
    preset = forms.ChoiceField(
        choices=[(p, p) for p in services.PRESETS],
        help_text="The base values: cpu-demo (SmolLM2-135M on a CPU) or paper-7b (the paper's 7B setting).",
    )
    model_entry = forms.ModelChoiceField(
        queryset=ModelEntry.objects.order_by("name"), label="Model", help_text="One of the models admins registered."
    )
    corpus = forms.ModelChoiceField(queryset=Corpus.objects.none(), help_text="A ready corpus of one of your teams.")
    queue = forms.ChoiceField(help_text="Where the run trains: cpu, or a GPU queue (gpu.<name>).")
    eval_sets = forms.ModelMultipleChoiceField(
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
        self.fields["corpus"].queryset = (
            Corpus.objects.filter(team__in=member_teams(user), status=Corpus.Status.READY).select_related("team").order_by("name")
        )
        self.fields["corpus"].label_from_instance = lambda c: f"{c.name} ({c.team})"
        self.fields["queue"].choices = [(q, q) for q in services.queue_choices()]
        self.fields["eval_sets"].queryset = (
            EvalSet.objects.filter(team__in=member_teams(user), status=EvalSet.Status.READY).select_related("team").order_by("name")
        )
        self.fields["eval_sets"].label_from_instance = lambda s: f"{s.name} ({s.team}, {s.items} items)"
        # A new run starts on the default model and the newest ready corpus; the person may change both.
        if not self.is_bound:
            default_model = ModelEntry.objects.filter(name=settings.DEFAULT_MODEL_NAME).first() or ModelEntry.objects.order_by("name").first()
            newest_corpus = self.fields["corpus"].queryset.order_by("-created_at").first()
            if default_model is not None:
                self.initial.setdefault("model_entry", default_model.pk)
            if newest_corpus is not None:
                self.initial.setdefault("corpus", newest_corpus.pk)
                # the bundled held-out sets, when loaded, come with a first run on the sample corpus
                from webapp.bootstrap import SAMPLE_EVAL_SETS

                samples = self.fields["eval_sets"].queryset.filter(team=newest_corpus.team, name__in=SAMPLE_EVAL_SETS)
                self.initial.setdefault("eval_sets", list(samples.values_list("pk", flat=True)))
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

    def sections(self) -> list[dict[str, Any]]:
        groups: dict[str, list] = {}
        for fname in self.knob_names:
            groups.setdefault(fname.split("__", 1)[0], []).append({"field": self[fname], "dotted": dotted_name(fname)})
        return [
            {"key": key, "title": SECTIONS.get(key, (key, ""))[0], "help": SECTIONS.get(key, ("", ""))[1], "fields": fields}
            for key, fields in groups.items()
        ]

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
