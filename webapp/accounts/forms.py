from __future__ import annotations

import logging

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm, SetPasswordForm

from webapp.accounts import ratelimit
from webapp.accounts.models import Membership

log = logging.getLogger(__name__)


class RateLimitMessage:
    """For login forms: a username + address over the limit gets the limiter's own message (the
    backend refuses it and the signal counts failures: webapp/accounts/ratelimit.py)."""

    def clean(self):
        username = self.data.get("username", "") or ""
        ip = ratelimit.client_ip(self.request) if self.request else None
        if username and ratelimit.is_limited(username, ip):
            raise forms.ValidationError(ratelimit.message(), code="rate_limited")
        return super().clean()


class RateLimitedAuthenticationForm(RateLimitMessage, AuthenticationForm):
    """The login page's form."""


class RateLimitedAdminAuthenticationForm(RateLimitMessage, AdminAuthenticationForm):
    """/admin/login/'s form (admin.site.login_form)."""


class ThrottledPasswordResetForm(PasswordResetForm):
    """Sends the reset mail only while the address and the account are under their limits; the page
    says the same either way (it never tells whether an account exists)."""

    def save(self, *args, request=None, **kwargs):  # PasswordResetView passes the request
        ip = ratelimit.client_ip(request) if request is not None else None
        if not ratelimit.reset_allowed(self.cleaned_data["email"], ip):
            log.warning("password reset for %s from %s: throttled", self.cleaned_data["email"], ip)
            return None
        return super().save(*args, request=request, **kwargs)


class TeamForm(forms.Form):
    name = forms.CharField(max_length=120)
    quota = forms.IntegerField(min_value=0, max_value=1000, required=False, label="Concurrent-run quota")


class InviteForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Membership.Role.choices)


class AddMemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Membership.Role.choices)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)


class QuotaForm(forms.Form):
    quota = forms.IntegerField(min_value=0, max_value=1000, label="Runs at once")
    queued = forms.IntegerField(min_value=0, max_value=10000, label="Runs waiting in the queue", required=False)
    disk_gib = forms.IntegerField(min_value=0, max_value=1_000_000, label="Disk (GiB, 0: no limit)", required=False)


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. 'nightly export script'.")


class AcceptInvitationForm(SetPasswordForm):
    """New account from an invitation: a username and a password (validated like any password)."""

    username = forms.CharField(max_length=150)
    field_order = ["username", "new_password1", "new_password2"]

    def __init__(self, *args, email: str = "", **kwargs):
        User = get_user_model()
        super().__init__(User(email=email), *args, **kwargs)

    def clean_username(self):
        User = get_user_model()
        username = self.cleaned_data["username"].strip()
        field = User._meta.get_field("username")
        for validator in field.validators:
            validator(username)
        if User.objects.filter(username__iexact=username).exists():
            raise forms.ValidationError("That username is taken: choose another, or log in and open the link again.")
        self.user.username = username
        return username
