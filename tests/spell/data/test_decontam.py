"""spell/data/decontam.py on hand-made documents and items."""

from spell.data.decontam import EvalIndex, decontaminate, words
from spell.data.evalsets import EvalItem
from spell.data.ingest import CorpusRecord

CONTEXT = ("Pleandwick was founded in 1790 by Felix Plour, a miller from Brulby. The town stands on the Mand "
           "River, 42 kilometres east of Geaford. Its main trade is barley malt.")
ITEM = EvalItem("q1", "doc_general_qa", "Who rebuilt the corn exchange of Pleandwick after the fire of 1870?",
                CONTEXT, None, ["Viktor Touther"], "test")


def test_words_ignore_case_and_punctuation():
    assert words("The Mand-River, 42 km!") == ["the", "mand", "river", "42", "km"]


def test_a_copied_passage_a_copied_question_and_clean_text():
    index = EvalIndex.from_items([ITEM])
    # 13 words of the context in a row, recased and re-punctuated
    assert index.contaminated("Local notes: from BRULBY. THE TOWN STANDS ON THE MAND RIVER; 42 kilometres east of Geaford.")
    # the question (12 words, under n) as a run of words
    assert index.contaminated("Quiz: who rebuilt the corn exchange of Pleandwick after the fire of 1870? Nobody knows.")
    # the same facts in other words, or a 12-word run of the context: kept
    assert not index.contaminated("Felix Plour, a miller, founded Pleandwick in 1790 on the Mand River near Geaford.")
    assert not index.contaminated("the town stands on the mand river 42 kilometres east of")
    # a two-word answer alone is not distinctive: kept
    assert not index.contaminated("Viktor Touther was a mason.")


def test_decontaminate_splits_records():
    clean = CorpusRecord(id="a", text="Harrowmere began in the spring of 1794.", cluster="c")
    copy = CorpusRecord(id="b", text="Intro. " + CONTEXT, cluster="c")
    kept, dropped = decontaminate([clean, copy], [ITEM])
    assert [r.id for r in kept] == ["a"] and [r.id for r in dropped] == ["b"]
