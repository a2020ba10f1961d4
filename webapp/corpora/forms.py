"""Upload forms. Per-file checks happen in services.store_uploads (a bad file is reported, the
good ones go on); the forms check what concerns the whole request."""

from __future__ import annotations

from django import forms
from django.conf import settings

from webapp.accounts.access import member_teams
from webapp.corpora.models import Corpus, EvalSet
from webapp.corpora.services import CORPUS_SUFFIXES, EVAL_SUFFIXES


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files; no per-file validation here (an empty or odd file is reported per file,
    it does not fail the form)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = [f for f in (data if isinstance(data, (list, tuple)) else [data]) if f]
        if not files and self.required:
            raise forms.ValidationError("Choose at least one file.", code="required")
        return files


class TeamOwnedForm(forms.Form):
    name = forms.CharField(max_length=200)
    team = forms.ModelChoiceField(queryset=None, empty_label=None)
    model = None  # Corpus or EvalSet: names are unique per team

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = member_teams(user).order_by("name")

    def clean(self):
        data = super().clean()
        name, team = (data.get("name") or "").strip(), data.get("team")
        if name and team and self.model.objects.filter(team=team, name=name).exists():
            self.add_error("name", f"{team} already has one named {name!r}.")
        data["name"] = name
        return data


class CorpusUploadForm(TeamOwnedForm):
    model = Corpus
    files = MultipleFileField(
        help_text=f"{', '.join(CORPUS_SUFFIXES)}; up to {settings.UPLOAD_MAX_FILES} files, "
                  f"{settings.UPLOAD_MAX_FILE_BYTES // (1 << 20)} MiB each.",
        widget=MultipleFileInput(attrs={"accept": ",".join(CORPUS_SUFFIXES)}),
    )
    cluster_size = forms.IntegerField(
        min_value=2, max_value=1000, initial=20, label="Documents per set",
        help_text="Target size of the document sets k-means makes (sets named in the files, their cluster field, are kept).")
    dedup_threshold = forms.FloatField(
        min_value=0.5, max_value=1.0, initial=0.8, label="Near-duplicate threshold",
        help_text="MinHash Jaccard similarity above which a document is dropped as a near duplicate.")
    min_chars = forms.IntegerField(min_value=0, max_value=1_000_000, initial=100, label="Minimum characters",
                                   help_text="Shorter documents are dropped.")
    clustering = forms.ChoiceField(
        choices=[("embeddings", "By meaning (all-MiniLM-L6-v2 sentence embeddings)"), ("tfidf", "By shared words (TF-IDF)")],
        initial="embeddings", required=False, label="Document sets",
        help_text="How documents without a named set (cluster field) are grouped into sets: by meaning, as the paper does "
                  "(the bundled all-MiniLM-L6-v2, or an embedding model an admin put under the model root or registered), "
                  "or by words.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from webapp.corpora.services import embedding_choices

        extra = [(c.value, f"By meaning ({c.name} sentence embeddings)") for c in embedding_choices()]
        base = list(self.fields["clustering"].choices)
        self.fields["clustering"].choices = base[:1] + extra + base[1:]

    def clean_files(self):
        files = self.cleaned_data["files"]
        if len(files) > settings.UPLOAD_MAX_FILES:
            raise forms.ValidationError(
                f"{len(files)} files in one upload; the limit is {settings.UPLOAD_MAX_FILES} "
                f"(put them in a .zip to send more).")
        return files

    def options(self) -> dict:
        options = {k: self.cleaned_data[k] for k in ("cluster_size", "dedup_threshold", "min_chars")}
        choice = self.cleaned_data.get("clustering") or "embeddings"
        if choice.startswith(("folder:", "model:")):  # one of embedding_choices(): the form checked it
            return {**options, "clustering": "embeddings", "embedding_model": choice}
        return {**options, "clustering": choice}


class EvalSetUploadForm(TeamOwnedForm):
    model = EvalSet
    file = forms.FileField(allow_empty_file=True, help_text=f"{', '.join(EVAL_SUFFIXES)}, "
                           f"up to {settings.UPLOAD_MAX_FILE_BYTES // (1 << 20)} MiB.",
                           widget=forms.ClearableFileInput(attrs={"accept": ",".join(EVAL_SUFFIXES)}))
    format = forms.ChoiceField(choices=EvalSet.Format.choices, required=False)
