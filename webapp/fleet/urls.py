from django.urls import path

from webapp.fleet import views

app_name = "fleet"
urlpatterns = [
    path("", views.index, name="index"),
    path("workers.json", views.workers_json, name="workers_json"),
    path("workers/<int:pk>/drain/", views.drain, name="drain"),
    path("workers/<int:pk>/enable/", views.enable, name="enable"),
    path("workers/<int:pk>/queues/add/", views.add_queue, name="add_queue"),
    path("workers/<int:pk>/queues/remove/", views.remove_queue, name="remove_queue"),
    path("workers/<int:pk>/forget/", views.forget, name="forget"),
    path("runs/<int:run_id>/cancel/", views.cancel_run, name="cancel_run"),
    path("runs/<int:run_id>/requeue/", views.requeue_run, name="requeue_run"),
]
