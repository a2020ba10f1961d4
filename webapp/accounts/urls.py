from django.urls import path

from webapp.accounts import views

app_name = "accounts"
urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("password-reset/", views.password_reset, name="password_reset"),
    path("password-reset/sent/", views.password_reset_done, name="password_reset_done"),
    path("reset/<uidb64>/<token>/", views.password_reset_confirm, name="password_reset_confirm"),
    path("reset/done/", views.password_reset_complete, name="password_reset_complete"),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<int:pk>/revoke/", views.revoke_token, name="revoke_token"),
    path("teams/", views.teams, name="teams"),
    path("teams/<int:pk>/", views.team, name="team"),
    path("teams/<int:pk>/invite/", views.invite, name="invite"),
    path("teams/<int:pk>/members/", views.add_member, name="add_member"),
    path("teams/<int:pk>/quota/", views.set_quota, name="set_quota"),
    path("memberships/<int:pk>/role/", views.set_role, name="set_role"),
    path("memberships/<int:pk>/remove/", views.remove_member, name="remove_member"),
    path("invitations/<int:pk>/revoke/", views.revoke_invitation, name="revoke_invitation"),
    path("invitations/<str:key>/", views.accept_invitation, name="accept_invitation"),
    path("users/", views.users, name="users"),
    path("users/<int:pk>/admin/", views.set_admin, name="set_admin"),
]
