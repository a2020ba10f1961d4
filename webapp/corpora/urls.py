from django.urls import path

from webapp.corpora import views

app_name = "corpora"
urlpatterns = [
    path("", views.index, name="index"),
    path("upload/", views.upload, name="upload"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/status.json", views.status, name="status"),
    path("<int:pk>/sets/<int:cluster_pk>/", views.cluster, name="cluster"),
    path("<int:pk>/documents/<int:doc_pk>/", views.document, name="document"),
    path("<int:pk>/delete/", views.delete, name="delete"),
    path("evalsets/upload/", views.evalset_upload, name="evalset_upload"),
    path("evalsets/<int:pk>/", views.evalset_detail, name="evalset_detail"),
    path("evalsets/<int:pk>/status.json", views.evalset_status, name="evalset_status"),
    path("evalsets/<int:pk>/delete/", views.evalset_delete, name="evalset_delete"),
]
