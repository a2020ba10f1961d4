from django.urls import path

from webapp.runs import api, views
from webapp.runs import dashboard_views

app_name = "runs"
urlpatterns = [
    path("", views.run_list, name="list"),
    path("new", views.run_new, name="new"),
    path("api/runs", api.runs_api, name="api_runs"),
    path("<int:pk>/", views.run_detail, name="detail"),
    path("<int:pk>/cancel", views.run_cancel, name="cancel"),
    path("<int:pk>/pause", views.run_pause, name="pause"),
    path("<int:pk>/resume", views.run_resume, name="resume"),
    path("<int:pk>/clone", views.run_clone, name="clone"),
    path("<int:pk>/delete", views.run_delete, name="delete"),
    path("<int:pk>/events", views.run_events, name="events"),
    path("<int:pk>/samples", views.run_samples, name="samples"),
    path("<int:pk>/metrics.csv", views.metrics_csv, name="metrics_csv"),
    path("<int:pk>/metrics.json", views.metrics_json, name="metrics_json"),
    path("<int:pk>/samples.jsonl", views.samples_jsonl, name="samples_jsonl"),
    path("<int:pk>/log", views.run_log, name="log"),
    path("<int:pk>/checkpoints/<str:name>.zip", views.checkpoint_download, name="checkpoint_download"),
    path("<int:pk>/checkpoints/<str:name>/register", views.checkpoint_register, name="checkpoint_register"),
    # the live dashboard (webapp/runs/dashboard_views.py)
    path("compare", dashboard_views.compare, name="compare"),
    path("<int:pk>/series.json", dashboard_views.series_json, name="series"),
    path("<int:pk>/alarms.json", dashboard_views.alarms_json, name="alarms"),
    path("<int:pk>/triples.json", dashboard_views.triples_json, name="triples"),
    path("<int:pk>/samples/<int:sample_id>/", dashboard_views.sample_detail, name="sample"),
    path("<int:pk>/samples/seq/<int:seq>/<int:index>/", dashboard_views.sample_by_seq, name="sample_by_seq"),
]
