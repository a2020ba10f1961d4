"""Admin: items and labels to look at; the review log read-only (append-only, no add/change/delete)."""

from django.contrib import admin

from webapp.audits.models import Label, ReviewItem, ReviewLog


class ReadOnlyAdmin(admin.ModelAdmin):
    """Every admin (is_staff) may read; nobody adds, changes or deletes here."""

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ReviewItem)
class ReviewItemAdmin(ReadOnlyAdmin):
    list_display = ("id", "run", "team", "task", "stage", "step", "reason", "verifier_yes", "needed_labels",
                    "label_count", "reserved_by", "reserved_until")
    list_filter = ("reason", "task", "needed_labels")


@admin.register(Label)
class LabelAdmin(ReadOnlyAdmin):
    list_display = ("id", "item", "annotator", "label", "created", "updated")
    list_filter = ("label",)


@admin.register(ReviewLog)
class ReviewLogAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor_name", "action", "item_id", "run_id", "before", "after")
    list_filter = ("action",)
    search_fields = ("actor_name",)
