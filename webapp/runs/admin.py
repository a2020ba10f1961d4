from django.contrib import admin

from webapp.runs.models import ModelEntry, Run


@admin.register(ModelEntry)
class ModelEntryAdmin(admin.ModelAdmin):
    """Admins register the models runs may use (no team: shared with all; a team: its own, as a run's
    registered checkpoint is); trust_remote_code stays off unless set here."""

    list_display = ("name", "team", "path", "max_positions", "trust_remote_code", "created_at")
    list_filter = ("team",)
    search_fields = ("name", "path")

    def save_model(self, request, obj, form, change):
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "team", "state", "queue", "attempt", "last_step", "created_at")
    list_filter = ("state", "queue", "team")
    readonly_fields = ("config",)
    search_fields = ("name",)
