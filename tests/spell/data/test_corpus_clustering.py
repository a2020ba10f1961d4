"""Clustering: determinism, set sizes, named clusters kept, labels."""

import random
from collections import Counter

import pytest

from spell.data.clustering import ClusterOptions, cluster_documents

TOPICS = {
    "river": "river flood bridge ferry mill wheel water bank ford current".split(),
    "finance": "revenue margin quarter dividend backlog segment profit cash guidance shares".split(),
    "lake": "lake loach oxygen buoy sediment pondweed ice thermocline survey cove".split(),
    "database": "tile compaction query planner release storage series rust index log".split(),
}
FILLER = "the a of and in to with was for on by at from".split()


def topic_doc(topic: str, seed: int, words: int = 80) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(TOPICS[topic]) if rng.random() < 0.6 else rng.choice(FILLER) for _ in range(words))


def corpus(per_topic: int) -> tuple[list[str], list[str]]:
    texts, topics = [], []
    for t_index, topic in enumerate(TOPICS):
        for i in range(per_topic):
            texts.append(topic_doc(topic, seed=t_index * 1000 + i))
            topics.append(topic)
    return texts, topics


@pytest.mark.parametrize("per_topic", [12, 40])  # 160 documents take the truncated-SVD path
def test_it_is_deterministic(per_topic):
    texts, _ = corpus(per_topic)
    first = cluster_documents(texts)
    second = cluster_documents(texts)
    assert first.assignment == second.assignment
    assert [g.label for g in first.groups] == [g.label for g in second.groups]


def test_it_recovers_topics_at_a_matching_target_size():
    texts, topics = corpus(10)
    result = cluster_documents(texts, options=ClusterOptions(target_size=10))
    assert len(result.groups) == 4
    for group in result.groups:
        assert len({topics[i] for i in group.members}) == 1


@pytest.mark.parametrize("per_topic, target", [(25, 20), (12, 10), (40, 20), (9, 5)])
def test_no_cluster_is_smaller_than_min_size_and_none_is_huge(per_topic, target):
    texts, _ = corpus(per_topic)
    options = ClusterOptions(target_size=target, min_size=5)
    result = cluster_documents(texts, options=options)
    sizes = [len(g.members) for g in result.groups]
    assert sum(sizes) == len(texts)
    assert min(sizes) >= 5
    assert max(sizes) <= 3 * target
    assert len(result.groups) >= len(texts) // (3 * target)
    assert sorted(i for g in result.groups for i in g.members) == list(range(len(texts)))


def test_a_corpus_smaller_than_two_sets_is_one_cluster():
    texts, _ = corpus(2)  # 8 documents: cannot make two sets of 5
    result = cluster_documents(texts)
    assert len(result.groups) == 1 and len(result.groups[0].members) == 8
    tiny = cluster_documents(texts[:3])
    assert [len(g.members) for g in tiny.groups] == [3]


def test_named_clusters_are_kept_and_the_rest_is_clustered():
    texts, topics = corpus(10)
    given = ["mine" if topic == "river" else None for topic in topics]
    result = cluster_documents(texts, given, ClusterOptions(target_size=10))
    assert result.groups[0].id == "mine" and result.groups[0].given
    assert result.groups[0].members == [i for i, t in enumerate(topics) if t == "river"]
    assert {result.assignment[i] for i, t in enumerate(topics) if t != "river"} == {"c0", "c1", "c2"}
    assert all(not g.given for g in result.groups[1:])


def test_few_unnamed_documents_join_the_most_similar_named_cluster():
    texts, topics = corpus(6)
    given = [topic if i % 6 else None for i, topic in enumerate(topics)]  # 4 documents unnamed
    result = cluster_documents(texts, given)
    assert result.assignment == topics
    assert "joined the most similar named cluster" in result.notes[0]


def test_generated_ids_do_not_collide_with_named_ones():
    texts, topics = corpus(10)
    given = ["c0" if topic == "river" else None for topic in topics]
    result = cluster_documents(texts, given, ClusterOptions(target_size=10))
    ids = [g.id for g in result.groups]
    assert len(ids) == len(set(ids)) and "c0" in ids and Counter(result.assignment)["c0"] == 10


def test_labels_are_top_terms():
    texts, topics = corpus(10)
    result = cluster_documents(texts, options=ClusterOptions(target_size=10, label_terms=3))
    for group in result.groups:
        topic = topics[group.members[0]]
        terms = group.label.split(", ")
        assert len(terms) == 3 and set(terms) <= set(TOPICS[topic])


def test_documents_without_words_still_get_a_cluster():
    result = cluster_documents(["12 34", "56 78", "the of"])
    assert result.assignment == ["c0", "c0", "c0"]
    assert result.groups[0].label == "untitled"


def test_documents_cluster_by_meaning_with_sentence_embeddings():
    from spell.data.clustering import ClusterOptions, cluster_documents
    from spell.data.embeddings import MiniLM

    # Two topics in different words: TF-IDF sees few shared terms, the embeddings see the topic.
    rivers = ["The ferry crosses the river at dawn.", "Boats carry people over the water to the far bank.",
              "A barge drifted down the stream past the quay.", "The boatman rowed travellers across the lake.",
              "Ships sail along the canal toward the harbour.", "A raft floated on the current of the river."]
    money = ["Quarterly revenue rose four percent.", "The company reported higher profits this year.",
             "Earnings per share beat the analysts' forecast.", "Operating income fell as costs increased.",
             "The firm paid a larger dividend to its shareholders.", "Sales grew while margins narrowed."]
    options = ClusterOptions(target_size=6, min_size=3, embedder=MiniLM())
    result = cluster_documents(rivers + money, None, options)
    assert len(result.groups) == 2
    assert {frozenset(g.members) for g in result.groups} == {frozenset(range(6)), frozenset(range(6, 12))}
