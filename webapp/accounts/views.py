"""Accounts pages: login (rate-limited), password reset, API tokens, and admin team / user management."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.views.decorators.http import require_POST

from webapp import quotas
from webapp.accounts import forms, services
from webapp.accounts.access import admin_required
from webapp.accounts.models import ApiToken, Invitation, Membership, Team


class LoginView(auth_views.LoginView):
    authentication_form = forms.RateLimitedAuthenticationForm


login_view = LoginView.as_view()

password_reset = auth_views.PasswordResetView.as_view(
    form_class=forms.ThrottledPasswordResetForm,
    email_template_name="registration/password_reset_email.txt",
    subject_template_name="registration/password_reset_subject.txt",
    success_url=reverse_lazy("accounts:password_reset_done"),
)
password_reset_done = auth_views.PasswordResetDoneView.as_view()
password_reset_confirm = auth_views.PasswordResetConfirmView.as_view(
    success_url=reverse_lazy("accounts:password_reset_complete")
)
password_reset_complete = auth_views.PasswordResetCompleteView.as_view()


def _show_errors(request, form) -> None:
    for field, errors in form.errors.items():
        label = "" if field == "__all__" else f"{form.fields[field].label or field.capitalize()}: "
        for error in errors:
            messages.error(request, f"{label}{error}")


# --- API tokens (every logged-in user, their own tokens) -------------------------------------------
@login_required
def tokens(request):
    new_token = None
    form = forms.TokenForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if form.is_valid():
            try:
                token, new_token = services.issue_token(request.user, form.cleaned_data["name"])
            except services.AccountError as exc:
                form.add_error("name", str(exc))
    items = ApiToken.objects.filter(user=request.user)
    status = 400 if request.method == "POST" and form.errors else 200
    return render(request, "accounts/tokens.html", {"form": form, "tokens": items, "new_token": new_token}, status=status)


@require_POST
@login_required
def revoke_token(request, pk: int):
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    token.delete()
    messages.success(request, f"Token {token.name!r} revoked.")
    return redirect("accounts:tokens")


# --- teams and users (admins) ----------------------------------------------------------------------
@admin_required
def teams(request):
    form = forms.TeamForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if form.is_valid():
            try:
                team = services.create_team(form.cleaned_data["name"], form.cleaned_data.get("quota"))
            except services.AccountError as exc:
                form.add_error("name", str(exc))
            else:
                messages.success(request, f"Team {team.name} created.")
                return redirect("accounts:team", pk=team.pk)
    items = Team.objects.order_by("name")
    status = 400 if form.errors else 200
    return render(request, "accounts/teams.html", {"form": form, "teams": items}, status=status)


@admin_required
def team(request, pk: int):
    team = get_object_or_404(Team, pk=pk)
    return render(request, "accounts/team.html", {
        "team": team,
        "memberships": team.memberships.select_related("user").order_by("user__username"),
        "invitations": team.invitations.filter(accepted_at__isnull=True).order_by("-created_at"),
        "invite_form": forms.InviteForm(),
        "add_form": forms.AddMemberForm(),
        "quota_form": forms.QuotaForm(initial={"quota": team.concurrent_run_quota, "queued": team.queued_run_quota,
                                               "disk_gib": team.disk_quota_gib}),
        "usage": quotas.usage(team),
        "roles": Membership.Role.choices,
    })


@require_POST
@admin_required
def invite(request, pk: int):
    team = get_object_or_404(Team, pk=pk)
    form = forms.InviteForm(request.POST)
    if not form.is_valid():
        _show_errors(request, form)
        return redirect("accounts:team", pk=team.pk)

    def accept_url(raw: str) -> str:
        return request.build_absolute_uri(reverse("accounts:accept_invitation", args=[raw]))

    invitation, link = services.invite(team, form.cleaned_data["email"], form.cleaned_data["role"], request.user, accept_url)
    messages.success(request, f"Invitation sent to {invitation.email}. The one-time link: {link}")
    return redirect("accounts:team", pk=team.pk)


@require_POST
@admin_required
def revoke_invitation(request, pk: int):
    invitation = get_object_or_404(Invitation, pk=pk, accepted_at__isnull=True)
    invitation.delete()
    messages.success(request, f"Invitation for {invitation.email} revoked.")
    return redirect("accounts:team", pk=invitation.team_id)


@require_POST
@admin_required
def add_member(request, pk: int):
    team = get_object_or_404(Team, pk=pk)
    form = forms.AddMemberForm(request.POST)
    if form.is_valid():
        try:
            membership = services.add_member(team, form.cleaned_data["username"], form.cleaned_data["role"])
        except services.AccountError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"{membership.user.username} added as {membership.get_role_display().lower()}.")
    else:
        _show_errors(request, form)
    return redirect("accounts:team", pk=team.pk)


@require_POST
@admin_required
def set_quota(request, pk: int):
    team = get_object_or_404(Team, pk=pk)
    try:
        services.set_quota(team, request.POST.get("quota"), request.POST.get("queued"), request.POST.get("disk_gib"))
    except services.AccountError as exc:
        messages.error(request, str(exc))
    else:
        disk = f"{team.disk_quota_gib} GiB of disk" if team.disk_quota_gib else "disk without a limit"
        messages.success(request, f"{team.name} may run {team.concurrent_run_quota} runs at once, queue "
                                  f"{team.queued_run_quota} and use {disk}.")
    return redirect("accounts:team", pk=team.pk)


@require_POST
@admin_required
def set_role(request, pk: int):
    membership = get_object_or_404(Membership.objects.select_related("user", "team"), pk=pk)
    form = forms.RoleForm(request.POST)
    if form.is_valid():
        services.set_role(membership, form.cleaned_data["role"])
        messages.success(request, f"{membership.user.username} is now {membership.get_role_display().lower()}.")
    else:
        _show_errors(request, form)
    return redirect("accounts:team", pk=membership.team_id)


@require_POST
@admin_required
def remove_member(request, pk: int):
    membership = get_object_or_404(Membership.objects.select_related("user"), pk=pk)
    membership.delete()
    messages.success(request, f"{membership.user.username} removed from the team.")
    return redirect("accounts:team", pk=membership.team_id)


@admin_required
def users(request):
    items = get_user_model().objects.order_by("username").prefetch_related("memberships__team")
    return render(request, "accounts/users.html", {"users": items})


@require_POST
@admin_required
def set_admin(request, pk: int):
    user = get_object_or_404(get_user_model(), pk=pk)
    make_admin = request.POST.get("admin") == "1"
    try:
        services.set_admin(user, make_admin, request.user)
    except services.AccountError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{user.username} is {'now' if make_admin else 'no longer'} an admin.")
    return redirect("accounts:users")


# --- invitations -----------------------------------------------------------------------------------
def accept_invitation(request, key: str):
    invitation = Invitation.find_open(key)
    if invitation is None:
        raise Http404("This invitation link is unknown, used or expired: ask an admin for a new one.")
    if request.user.is_authenticated:
        if request.method == "POST":
            try:
                services.accept(invitation, request.user)
            except services.AccountError as exc:
                messages.error(request, str(exc))
                return redirect("home")
            messages.success(request, f"You joined {invitation.team.name}.")
            return redirect("home")
        return render(request, "accounts/accept_invitation.html", {"invitation": invitation, "form": None})
    form = forms.AcceptInvitationForm(request.POST if request.method == "POST" else None, email=invitation.email)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.create_invited_user(
                invitation, form.cleaned_data["username"], form.cleaned_data["new_password1"]
            )
        except services.AccountError as exc:
            messages.error(request, str(exc))
            return redirect("login")
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome, {user.username}: you joined {invitation.team.name}.")
        return redirect("home")
    status = 400 if form.errors else 200
    return render(request, "accounts/accept_invitation.html", {"invitation": invitation, "form": form}, status=status)
