"""Corpus logic: create a corpus from files and run the ingest pipeline (spell.data) on it."""

from __future__ import annotations

import json
from pathlib import Path

from django.db import transaction

from webapp.corpora.models import Cluster, Corpus, Document


def create_corpus_from_paths(team, name: str, paths: list[Path], user=None) -> Corpus:
    """Synchronous ingest of JSONL corpus files (the sample corpus). Uploads go through the Celery task."""
    corpus = Corpus.objects.create(team=team, name=name, created_by=user, status=Corpus.Status.INGESTING)
    documents = []
    for path in paths:
        for line_no, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                record = json.loads(line)
                documents.append(record | {"_source": Path(path).name, "_line": line_no})
    clusters: dict[str, Cluster] = {}
    with transaction.atomic():
        for record in documents:
            key = str(record.get("cluster") or "all")
            if key not in clusters:
                clusters[key] = Cluster.objects.create(corpus=corpus, key=key, label=key)
            cluster = clusters[key]
            tokens = len(record["text"].split())
            Document.objects.create(
                corpus=corpus, cluster=cluster, external_id=str(record.get("id") or f"{record['_source']}:{record['_line']}"),
                title=record.get("title", ""), text=record["text"], numeric=bool(record.get("numeric")),
                tokens=tokens, source_file=record["_source"],
            )
            cluster.size += 1
            cluster.tokens += tokens
            cluster.numeric = cluster.numeric or bool(record.get("numeric"))
        for cluster in clusters.values():
            cluster.save()
        corpus.stats = {
            "documents": len(documents),
            "tokens": sum(c.tokens for c in clusters.values()),
            "clusters": len(clusters),
        }
        corpus.status = Corpus.Status.READY
        corpus.save()
    return corpus
