from django.urls import path

from webapp.corpora import views

app_name = "corpora"
urlpatterns = [
    path("<int:pk>/", views.corpus_detail, name="detail"),
]
