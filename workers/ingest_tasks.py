"""Celery tasks: corpus ingest and eval-set reading (queue "default").

Thin: claim the row with a conditional UPDATE (a redelivered task finds it claimed and exits),
call webapp.corpora.services, and turn any failure into FAILED with a message. Documents are
written in one transaction at the end, so a failure leaves none behind.
"""

from __future__ import annotations

import logging

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from webapp import task_names
from workers.celery import app

log = logging.getLogger(__name__)


# ignore_result: state lives in the Corpus / EvalSet row, and a view sending the task must not
# wait on the result backend.
def time_limit_message() -> str:
    limit = settings.INGEST_TIME_LIMIT_SECONDS
    return (f"it took longer than {limit / 60:.0f} minutes (INGEST_TIME_LIMIT_SECONDS) and was stopped. "
            "Split the upload into smaller corpora, or choose TF-IDF clustering (faster than embeddings)")


LIMITS = {"soft_time_limit": settings.INGEST_TIME_LIMIT_SECONDS, "time_limit": settings.INGEST_TIME_LIMIT_SECONDS + 60}


@app.task(name=task_names.INGEST_CORPUS, acks_late=True, ignore_result=True, **LIMITS)
def ingest_corpus(corpus_id: int) -> dict:
    from webapp.corpora import services

    corpus = services.claim_for_ingest(corpus_id)
    if corpus is None:
        return {"corpus": corpus_id, "skipped": "not pending"}
    try:
        services.run_ingest(corpus)
    except services.CorpusGone:
        return {"corpus": corpus_id, "skipped": "deleted during ingest"}
    except SoftTimeLimitExceeded:
        log.error("ingest of corpus %s: time limit reached", corpus_id)
        services.mark_failed(corpus, RuntimeError(time_limit_message()))
        return {"corpus": corpus_id, "status": "failed"}
    except Exception as exc:
        log.exception("ingest of corpus %s failed", corpus_id)
        services.mark_failed(corpus, exc)
        return {"corpus": corpus_id, "status": "failed"}
    corpus.refresh_from_db()
    return {"corpus": corpus_id, "status": corpus.status, "documents": corpus.stats.get("documents", 0)}


@app.task(name=task_names.INGEST_EVAL_SET, acks_late=True, ignore_result=True, **LIMITS)
def ingest_eval_set(eval_set_id: int) -> dict:
    from django.utils import timezone

    from webapp.corpora import services
    from webapp.corpora.models import EvalSet

    eval_set = services.claim_eval_set(eval_set_id)
    if eval_set is None:
        return {"eval_set": eval_set_id, "skipped": "not pending"}
    try:
        eval_set = services.read_eval_set_file(eval_set)
    except Exception as exc:  # SoftTimeLimitExceeded included
        log.exception("reading eval set %s failed", eval_set_id)
        why = time_limit_message() if isinstance(exc, SoftTimeLimitExceeded) else str(exc)
        EvalSet.objects.filter(pk=eval_set_id).update(
            status=EvalSet.Status.FAILED, error=f"Reading the file failed: {why}"[:5000], finished_at=timezone.now())
        return {"eval_set": eval_set_id, "status": "failed"}
    return {"eval_set": eval_set_id, "status": eval_set.status, "items": eval_set.items}
