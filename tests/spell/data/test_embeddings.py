"""Embedding folders: which folders count, any folder embeds (pooling as its config says), and the
progress callback after every batch."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spell.data.embeddings import Embedder, embedding_folder_problem, find_embedding_folders, model_dir
from tests.spell.data.tiny_embedder import make_embedding_folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_embedding_folder(tmp_path_factory.mktemp("models") / "org" / "tiny-bert")


def test_embedding_folders_need_a_config_and_a_tokenizer_and_are_not_generative(tmp_path, tiny):
    assert embedding_folder_problem(model_dir()) is None  # the bundled all-MiniLM-L6-v2
    assert embedding_folder_problem(tiny) is None
    (tmp_path / "no-config").mkdir()
    (tmp_path / "no-config" / "tokenizer.json").write_text("{}")
    assert "no config.json" in embedding_folder_problem(tmp_path / "no-config")
    (tmp_path / "no-tokenizer").mkdir()
    (tmp_path / "no-tokenizer" / "config.json").write_text('{"model_type": "bert"}')
    assert "no tokenizer" in embedding_folder_problem(tmp_path / "no-tokenizer")
    (tmp_path / "lm").mkdir()
    (tmp_path / "lm" / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}))
    (tmp_path / "lm" / "tokenizer.json").write_text("{}")
    assert "generative model" in embedding_folder_problem(tmp_path / "lm")
    assert "not a folder" in embedding_folder_problem(tmp_path / "missing")
    # org/name layouts are found; links are not followed, folders without a model are skipped
    (tmp_path / "linked").symlink_to(tiny, target_is_directory=True)
    assert find_embedding_folders(tmp_path) == []
    assert find_embedding_folders(tiny.parent.parent) == [tiny]


def test_any_embedding_folder_embeds_with_progress_after_every_batch(tiny):
    seen = []
    embed = Embedder(tiny, batch_size=2)
    vectors = embed(["The ferry crosses the river.", "Revenue rose.", "A barge drifted.", "Profits fell.", "x"],
                    on_progress=lambda done, total: seen.append((done, total)))

    assert vectors.shape == (5, 32) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert seen == [(2, 5), (4, 5), (5, 5)]
    # mean pooling; 256 tokens unless the model has fewer positions (this one has 128)
    assert embed.pooling == "mean" and embed.max_tokens == 128 and embed.name == "tiny-bert"
    # the same texts in other batches give the same vectors (padding does not leak into the mean)
    assert np.allclose(Embedder(tiny, batch_size=5)(["Revenue rose."]), vectors[1], atol=1e-5)


def test_a_folder_asking_for_cls_pooling_gets_it(tmp_path, tiny):
    import torch
    from transformers import AutoModel, AutoTokenizer

    folder = make_embedding_folder(tmp_path / "cls-bert", pooling="cls_token")
    vector = Embedder(folder)(["Boats carry people over the water."])
    batch = AutoTokenizer.from_pretrained(folder)(["Boats carry people over the water."], return_tensors="pt")
    with torch.no_grad():
        cls = AutoModel.from_pretrained(folder)(**batch).last_hidden_state[:, 0]
    assert np.allclose(vector, torch.nn.functional.normalize(cls, dim=-1).numpy(), atol=1e-5)


def test_the_clustering_reports_embedding_progress_then_the_k_means(tiny):
    from spell.data.clustering import ClusterOptions, cluster_documents

    seen = []
    texts = [f"document number {i} about {'rivers' if i % 2 else 'money'}" for i in range(12)]
    result = cluster_documents(texts, None, ClusterOptions(target_size=6, min_size=3, embedder=Embedder(tiny, batch_size=5)),
                               on_progress=lambda *event: seen.append(event))

    assert sum(g.members.__len__() for g in result.groups) == 12
    assert seen == [("embed", 0, 12), ("embed", 5, 12), ("embed", 10, 12), ("embed", 12, 12), ("cluster", 0, 1)]
