from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from webapp import health, views
from webapp.accounts import views as accounts_views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("login/", accounts_views.login_view, name="login"),  # rate-limited
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/", include("webapp.accounts.urls")),
    path("corpora/", include("webapp.corpora.urls")),
    path("runs/", include("webapp.runs.urls")),
    path("review/", include("webapp.audits.urls")),
    path("fleet/", include("webapp.fleet.urls")),
    path("admin/", admin.site.urls),
]

# The project's own pages for errors, with the navigation (DEBUG-off; webapp.pages does the 404 in DEBUG).
handler400 = "webapp.views.bad_request"
handler404 = "webapp.views.page_not_found"
handler403 = "webapp.views.permission_denied"
handler500 = "webapp.views.server_error"
