"""The name of every Celery task, in one scheme: `workers.<area>.<action>`. The workers register
their tasks under these names (workers/*_tasks.py) and the web app sends them by name
(webapp/taskqueue.py, the beat schedule in settings), so neither side spells a name itself.
No imports: settings reads it before anything else is set up."""

RUN_SPELL = "workers.runs.supervise"          # a run's attempt: claim, start `spell train`, relay, end
RUN_RETENTION = "workers.runs.retention"      # keep_last / age rules on finished runs' folders
INGEST_CORPUS = "workers.ingest.corpus"
INGEST_EVAL_SET = "workers.ingest.eval_set"
FLEET_SWEEP = "workers.fleet.sweep"           # silent workers offline, their runs LOST, LOST runs requeued
FLEET_RECONCILE = "workers.fleet.reconcile"   # unclaimed QUEUED runs / PENDING ingests sent again
PING = "workers.fleet.ping"                   # health check: a worker answers

ALL = (RUN_SPELL, RUN_RETENTION, INGEST_CORPUS, INGEST_EVAL_SET, FLEET_SWEEP, FLEET_RECONCILE, PING)
