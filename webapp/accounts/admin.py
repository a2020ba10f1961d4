from django.contrib import admin

from webapp.accounts.forms import RateLimitedAdminAuthenticationForm
from webapp.accounts.models import Membership, Team

# /admin/login/ shares the login rate limiter (its backend and signal) and says so the same way.
admin.site.login_form = RateLimitedAdminAuthenticationForm


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "concurrent_run_quota", "created_at")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [MembershipInline]
