"""A corpus page reads well: a way to start a run, its documents (paged, searchable), Markdown
rendered safely, and why a document or a document set is numeric or not."""

from __future__ import annotations

import re

import pytest

from webapp.corpora.markdown import render_markdown
from webapp.corpora.models import Cluster, Corpus, Document


@pytest.fixture
def corpus(team):
    corpus = Corpus.objects.create(team=team, name="Towns", status=Corpus.Status.READY,
                                   stats={"documents": 30, "clusters": 2, "numeric_clusters": 1})
    prose = Cluster.objects.create(corpus=corpus, key="prose", label="stories", size=28)
    tables = Cluster.objects.create(corpus=corpus, key="tables", label="reports", size=2, numeric=True)
    for i in range(28):
        Document.objects.create(corpus=corpus, cluster=prose, external_id=f"p{i}", title=f"Story {i}",
                                text=f"Story {i} tells of the mill by the river and the bakers of Corvane.", tokens=12,
                                source_file="stories.jsonl")
    for i in range(2):
        Document.objects.create(corpus=corpus, cluster=tables, external_id=f"t{i}", title=f"Report {i}",
                                text="| year | revenue |\n| 2021 | 1,204 |\n| 2022 | 1,380 |", tokens=20, numeric=True,
                                source_file="reports.jsonl")
    return corpus


def test_a_ready_corpus_offers_to_start_a_run_with_it(member_client, corpus):
    page = member_client.get(f"/corpora/{corpus.pk}/").content.decode()

    assert f'id="start-run" href="/runs/new?corpus={corpus.pk}"' in page


def test_a_corpus_still_ingesting_offers_no_run(member_client, team):
    pending = Corpus.objects.create(team=team, name="Later", status=Corpus.Status.INGESTING, progress_stage="cluster")

    page = member_client.get(f"/corpora/{pending.pk}/").content.decode()

    assert 'id="start-run"' not in page and "grouping into document sets" in page


def test_the_corpus_page_lists_its_documents_paged(member_client, corpus):
    page = member_client.get(f"/corpora/{corpus.pk}/").content.decode()

    listed = page[page.index('id="document-list"'):]
    assert listed.count("/documents/") == 25 and "30 documents · page 1 of 2" in page
    assert 'page=2#documents">next →</a>' in page
    second = member_client.get(f"/corpora/{corpus.pk}/?page=2").content.decode()
    assert second[second.index('id="document-list"'):].count("/documents/") == 5


def test_the_documents_are_searchable(member_client, corpus):
    page = member_client.get(f"/corpora/{corpus.pk}/", {"q": "revenue"}).content.decode()

    assert "2 documents match “revenue”" in page and "Report 0" in page and "Story 1<" not in page
    by_id = member_client.get(f"/corpora/{corpus.pk}/", {"q": "p27"}).content.decode()
    assert "1 document match" in by_id and "Story 27" in by_id


def test_the_sets_say_why_they_are_numeric(member_client, corpus):
    page = member_client.get(f"/corpora/{corpus.pk}/").content.decode()

    assert "2 / 2 numeric documents" in page and "0 / 28 numeric documents" in page
    tables = Cluster.objects.get(key="tables")
    set_page = member_client.get(f"/corpora/{corpus.pk}/sets/{tables.pk}/").content.decode()
    assert "Numeric: 2 of its 2 documents (100%) pass the numeric test; a set is numeric from 50%." in set_page


def test_a_set_flagged_by_the_file_says_so(member_client, corpus):
    prose = Cluster.objects.get(key="prose")
    Cluster.objects.filter(pk=prose.pk).update(numeric=True)

    page = member_client.get(f"/corpora/{corpus.pk}/sets/{prose.pk}/").content.decode()

    assert "Numeric because the uploaded file says so" in page


def test_a_not_numeric_document_says_why(member_client, corpus):
    doc = Document.objects.create(
        corpus=corpus, external_id="figs", title="Figures in prose", tokens=40, source_file="notes.txt",
        text="In 2021 the mill sold 1,204 loaves and in 2022 it sold 1,380, a rise the bakers of Corvane "
             "credited to the new oven, the longer market days and the river trade that summer.")

    page = member_client.get(f"/corpora/{corpus.pk}/documents/{doc.pk}/").content.decode()

    reason = page[page.index('id="numeric-reason"'):]
    assert re.search(r"not numeric: \d+% of its \d+ words are numbers \(numeric from 15%\)", reason)
    assert "look like table rows (numeric from 20%)" in reason


def test_a_markdown_document_renders_safely(member_client, corpus):
    doc = Document.objects.create(
        corpus=corpus, external_id="md", title="Notes", tokens=30, source_file="notes.md",
        text="# The mill\n\nIt **grinds** *wheat*.\n\n- one\n- two\n\n<script>alert(1)</script>\n\n"
             "[home](https://example.org) [bad](javascript:alert(1))")

    page = member_client.get(f"/corpora/{corpus.pk}/documents/{doc.pk}/").content.decode()

    rendered = page[page.index('id="doc-markdown"'):page.index("The text as stored")]
    assert "<h1>The mill</h1>" in rendered and "<strong>grinds</strong>" in rendered and "<em>wheat</em>" in rendered
    assert "<ul><li>one</li><li>two</li></ul>" in rendered
    assert "<script>" not in page.replace('<script src=', '') and "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered
    assert '<a href="https://example.org" rel="nofollow noopener noreferrer">home</a>' in rendered
    assert 'href="javascript' not in page


def test_a_plain_text_document_is_not_rendered_as_markdown(member_client, corpus):
    doc = Document.objects.filter(source_file="stories.jsonl").first()

    page = member_client.get(f"/corpora/{corpus.pk}/documents/{doc.pk}/").content.decode()

    assert 'id="doc-markdown"' not in page and 'class="doc-text"' in page


@pytest.mark.parametrize("source,expected", [
    ("a <b>bold</b> & \"quoted\"", "<p>a &lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot;</p>"),
    ("```\n<x> **not bold**\n```", "<pre><code>&lt;x&gt; **not bold**</code></pre>"),
    ("use `<tag>` here", "<p>use <code>&lt;tag&gt;</code> here</p>"),
    ("| a | b |\n|---|---|\n| 1 | 2 |", '<table class="grid"><thead><tr><th>a</th><th>b</th></tr></thead><tbody><tr><td>1</td><td>2</td></tr></tbody></table>'),
    ("1. first\n2. second", "<ol><li>first</li><li>second</li></ol>"),
    ("> quoted", "<blockquote><p>quoted</p></blockquote>"),
    ('[x](" onmouseover="alert(1))', '<p>[x](&quot; onmouseover=&quot;alert(1))</p>'),
    ("![pic](https://evil.example/x.png)", '<p><a href="https://evil.example/x.png" rel="nofollow noopener noreferrer">pic</a></p>'),
    ("[a](data:text/html,hi)", "<p>a</p>"),
])
def test_the_markdown_subset(source, expected):
    assert str(render_markdown(source)) == expected


def test_the_ui_says_document_set_not_cluster(member_client, corpus):
    page = member_client.get(f"/corpora/{corpus.pk}/").content.decode()
    upload = member_client.get("/corpora/upload/").content.decode()

    visible = re.sub(r"<[^>]+>", " ", page)  # text a person reads (ids and URLs aside)
    assert "Document sets" in visible and not re.search(r"\bclusters?\b", visible, re.IGNORECASE)
    assert "(its document set)" in upload
