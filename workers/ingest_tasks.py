"""Celery tasks: corpus ingest and eval-set reading (queue "default").

Thin: claim the row with a conditional UPDATE (a redelivered task finds it claimed and exits),
call webapp.corpora.services, and turn any failure into FAILED with a message. Documents are
written in one transaction at the end, so a failure leaves none behind.
"""

from __future__ import annotations

import logging

from webapp import task_names
from workers.celery import app

log = logging.getLogger(__name__)


# ignore_result: state lives in the Corpus / EvalSet row, and a view sending the task must not
# wait on the result backend.
@app.task(name=task_names.INGEST_CORPUS, acks_late=True, ignore_result=True)
def ingest_corpus(corpus_id: int) -> dict:
    from webapp.corpora import services

    corpus = services.claim_for_ingest(corpus_id)
    if corpus is None:
        return {"corpus": corpus_id, "skipped": "not pending"}
    try:
        services.run_ingest(corpus)
    except services.CorpusGone:
        return {"corpus": corpus_id, "skipped": "deleted during ingest"}
    except Exception as exc:
        log.exception("ingest of corpus %s failed", corpus_id)
        services.mark_failed(corpus, exc)
        return {"corpus": corpus_id, "status": "failed"}
    corpus.refresh_from_db()
    return {"corpus": corpus_id, "status": corpus.status, "documents": corpus.stats.get("documents", 0)}


@app.task(name=task_names.INGEST_EVAL_SET, acks_late=True, ignore_result=True)
def ingest_eval_set(eval_set_id: int) -> dict:
    from django.utils import timezone

    from webapp.corpora import services
    from webapp.corpora.models import EvalSet

    eval_set = services.claim_eval_set(eval_set_id)
    if eval_set is None:
        return {"eval_set": eval_set_id, "skipped": "not pending"}
    try:
        eval_set = services.read_eval_set_file(eval_set)
    except Exception as exc:
        log.exception("reading eval set %s failed", eval_set_id)
        EvalSet.objects.filter(pk=eval_set_id).update(
            status=EvalSet.Status.FAILED, error=f"Reading the file failed: {exc}"[:5000], finished_at=timezone.now())
        return {"eval_set": eval_set_id, "status": "failed"}
    return {"eval_set": eval_set_id, "status": eval_set.status, "items": eval_set.items}
