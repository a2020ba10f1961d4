from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, SetPasswordForm

from webapp.accounts import ratelimit
from webapp.accounts.models import Membership


class RateLimitedAuthenticationForm(AuthenticationForm):
    """The login form, refusing (before checking the password) once a username + address has failed
    too often, and counting failures."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "rate_limited": "Too many failed logins.",
    }

    def clean(self):
        username = self.data.get("username", "") or ""
        ip = ratelimit.client_ip(self.request) if self.request else None
        if username and ratelimit.is_limited(username, ip):
            raise forms.ValidationError(ratelimit.message(), code="rate_limited")
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            if username:
                ratelimit.record_failure(username, ip)
            raise
        ratelimit.clear(username, ip)
        return cleaned


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
    quota = forms.IntegerField(min_value=0, max_value=1000, label="Concurrent-run quota")


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
