"""`{% load audits %}{% review_panel run %}` on the run page: the verifier-vs-human charts and the
false-accept alarm (rendered on the server, so it shows without JavaScript)."""

from django import template

from webapp.audits import services

register = template.Library()


@register.inclusion_tag("audits/_run_panel.html")
def review_panel(run):
    return {"run": run, "alarm": services.false_accept_alarm(run), "config": services.audit_config(run)}
