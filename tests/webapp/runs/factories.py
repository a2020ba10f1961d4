"""Helpers that make corpora and runs for the runs and worker tests (plain functions, no fixtures)."""

from __future__ import annotations

import json

from webapp.corpora.models import Cluster, Corpus, Document
from webapp.runs import services
from webapp.runs.models import Run


def make_corpus(team, name="Docs", status=Corpus.Status.READY, docs=4):
    corpus = Corpus.objects.create(team=team, name=name, status=status)
    clusters = [Cluster.objects.create(corpus=corpus, key=f"c{i}", label=f"c{i}", size=2) for i in range(2)]
    for i in range(docs):
        Document.objects.create(corpus=corpus, cluster=clusters[i % 2], external_id=f"d{i}", title=f"Doc {i}",
                                text=f"Document {i} says the answer is {i}.", numeric=False, tokens=8)
    return corpus


def make_run(team, corpus, model_entry, *, name="demo", overrides=None, state=None, user=None, fake=None, **kw):
    """A run launched through services (QUEUED, enqueued after commit); `fake` writes the fake
    trainer's instructions into the run dir; `state` then forces a state for view tests."""
    cfg = services.build_config("cpu-demo", overrides or {}, model_entry)
    run = services.launch(team=team, name=name, corpus=corpus, model_entry=model_entry, config=cfg,
                          preset="cpu-demo", queue=kw.pop("queue", "cpu"), user=user, **kw) if fake is None else None
    if fake is not None:  # write the instructions before the task can reach a worker
        from django.db import transaction

        with transaction.atomic():
            run = services.launch(team=team, name=name, corpus=corpus, model_entry=model_entry, config=cfg,
                                  preset="cpu-demo", queue=kw.pop("queue", "cpu"), user=user, **kw)
            run.path.mkdir(parents=True, exist_ok=True)
            (run.path / "fake.json").write_text(json.dumps(fake))
    if state is not None:
        Run.objects.filter(pk=run.pk).update(state=state)
        run.refresh_from_db()
    return run


