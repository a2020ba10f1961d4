from django.urls import path

from webapp.audits import views

app_name = "audits"
urlpatterns = [
    path("", views.index, name="index"),
    path("<int:run_id>/next", views.next_item, name="next"),
    path("items/<int:pk>/", views.item_page, name="item"),
    path("items/<int:pk>/label", views.submit, name="submit"),
    path("runs/<int:run_id>/metrics.json", views.metrics_json, name="metrics"),
    path("runs/<int:run_id>/labels.jsonl", views.labels_jsonl, name="export"),
    path("log", views.review_log, name="log"),
    path("progress", views.progress, name="progress"),
]
