from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render

from webapp.corpora.models import Corpus


@login_required
def corpus_detail(request, pk: int):
    corpus = get_object_or_404(Corpus.objects.visible_to(request.user), pk=pk)
    clusters = corpus.clusters.order_by("key")
    return render(request, "corpora/detail.html", {"corpus": corpus, "clusters": clusters})
