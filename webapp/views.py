from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from webapp.corpora.models import Corpus


@login_required
def home(request):
    corpora = Corpus.objects.visible_to(request.user).order_by("-created_at")[:20]
    return render(request, "home.html", {"corpora": corpora})
