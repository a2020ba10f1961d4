"""Group documents into document sets of about `target_size` (the paper: ~20) for self-play.

Clusters named in the uploaded file are kept as they are. The other documents are embedded with
TF-IDF (L2-normalised, so k-means on them behaves like cosine clustering; above 128 documents
reduced by a seeded truncated SVD first) and split by seeded
k-means into ceil(n / target_size) groups; a group over twice the target is split again (the
paper's hierarchical k-means, offline and without an embedding model). Groups under `min_size`
are then dissolved, their documents moving to the nearest remaining centroid, so no set is smaller
than m=5 unless the documents to cluster are fewer than that to begin with: then they form one
set, or, when named clusters exist, each joins its most similar named cluster.
Each cluster's label is its top TF-IDF terms. With `embedder` (e.g. all-MiniLM-L6-v2,
spell/data/embeddings.py) the documents are clustered on their sentence embeddings instead: by
meaning, as the paper clusters them, rather than by shared words.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy import sparse
from sklearn.cluster import KMeans
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize
from threadpoolctl import threadpool_limits


@dataclass(frozen=True)
class ClusterOptions:
    target_size: int = 20
    min_size: int = 5
    seed: int = 0
    max_features: int = 50_000
    label_terms: int = 3
    id_prefix: str = "c"
    # k-means runs on a seeded truncated SVD of the TF-IDF matrix (latent semantic analysis)
    # when there are more documents than this: ~10x faster on thousands of documents and it
    # merges synonyms a bag of words keeps apart. None: k-means on TF-IDF itself.
    svd_dims: int | None = 128
    # BLAS threads for k-means / SVD. One is fastest here: measured 5 s vs 29 s for 2,000
    # documents on a busy 2-core machine, where BLAS threads fight the other processes.
    # None: the library default.
    blas_threads: int | None = 1
    # Cluster by meaning: a callable texts -> unit row vectors (spell/data/embeddings.py MiniLM)
    # used instead of TF-IDF (+ SVD) for k-means and the nearest-centroid moves; labels stay the
    # top TF-IDF terms. None: TF-IDF.
    embedder: Callable[[Sequence[str]], np.ndarray] | None = None


@dataclass
class ClusterGroup:
    id: str
    label: str
    members: list[int]  # indices into the documents given
    given: bool  # named in the uploaded file


@dataclass
class Clustering:
    groups: list[ClusterGroup]
    assignment: list[str]  # cluster id per document, in input order
    notes: list[str]


def _vectorize(texts: Sequence[str], options: ClusterOptions) -> tuple[sparse.csr_matrix, np.ndarray]:
    vectorizer = TfidfVectorizer(
        stop_words="english", max_features=options.max_features, sublinear_tf=True,
        # Words only: numbers would pull every financial table into one topic.
        token_pattern=r"(?u)\b[^\W\d_][^\W\d_]+\b", dtype=np.float32,
    )
    try:
        matrix = vectorizer.fit_transform(texts)
        terms = vectorizer.get_feature_names_out()
    except ValueError:  # empty vocabulary: nothing but stop words or numbers
        matrix = sparse.csr_matrix((len(texts), 1), dtype=np.float32)
        terms = np.array([""])
    return matrix.tocsr(), terms


def _reduce(matrix: sparse.csr_matrix, options: ClusterOptions):
    """The vectors k-means and the nearest-centroid moves use (rows L2-normalised)."""
    dims = options.svd_dims
    if dims is None or matrix.shape[0] <= dims:
        return matrix
    if matrix.shape[1] <= dims:  # a small vocabulary: dense k-means is faster than sparse
        return matrix.toarray()
    reduced = TruncatedSVD(n_components=dims, random_state=options.seed).fit_transform(matrix)
    return normalize(reduced).astype(np.float32)


def _centroids(matrix: sparse.csr_matrix, groups: list[list[int]]) -> np.ndarray:
    """Mean vector of each group, as one sparse product (slicing the matrix per group is ~50x
    slower on a few thousand documents)."""
    rows = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
    cols = np.fromiter((i for g in groups for i in g), dtype=np.int64, count=len(rows))
    weights = np.repeat([1.0 / len(g) for g in groups], [len(g) for g in groups])
    averaging = sparse.csr_matrix((weights, (rows, cols)), shape=(len(groups), matrix.shape[0]))
    product = averaging @ matrix
    return np.asarray(product.todense() if sparse.issparse(product) else product)


def _kmeans(matrix: sparse.csr_matrix, indices: list[int], k: int, seed: int) -> list[list[int]]:
    if k <= 1 or len(indices) <= k:
        return [indices]
    model = KMeans(n_clusters=k, random_state=seed, n_init=3, max_iter=100)
    labels = model.fit_predict(matrix[indices])
    groups = [[indices[i] for i in np.flatnonzero(labels == label)] for label in range(k)]
    return [g for g in groups if g]


def _split_large(matrix, indices: list[int], options: ClusterOptions, depth: int = 0) -> list[list[int]]:
    k = math.ceil(len(indices) / options.target_size)
    groups = _kmeans(matrix, indices, k, options.seed + depth)
    if len(groups) == 1:  # k-means could not separate them (identical vectors): keep as one
        return groups
    result: list[list[int]] = []
    for group in groups:
        if len(group) > 2 * options.target_size:
            result.extend(_split_large(matrix, group, options, depth + 1))
        else:
            result.append(group)
    return result


def _dissolve_small(matrix, groups: list[list[int]], min_size: int) -> list[list[int]]:
    """Move the documents of the smallest under-size group to their nearest other centroid,
    until every group has at least `min_size` documents or one group is left."""
    groups = [list(g) for g in groups]
    while len(groups) > 1:
        smallest = min(range(len(groups)), key=lambda i: (len(groups[i]), i))
        if len(groups[smallest]) >= min_size:
            break
        orphans = groups.pop(smallest)
        centroids = _centroids(matrix, groups)
        similarity = matrix[orphans] @ centroids.T
        for orphan, row in zip(orphans, np.asarray(similarity)):
            groups[int(np.argmax(row))].append(orphan)
    return [sorted(g) for g in groups]


def _label(matrix, terms: np.ndarray, members: list[int], count: int) -> str:
    weights = np.asarray(matrix[members].mean(axis=0)).ravel()
    top = [terms[i] for i in np.argsort(-weights, kind="stable")[:count] if weights[i] > 0]
    return ", ".join(top) or "untitled"


def _fresh_ids(prefix: str, taken: set[str]) -> Callable[[], str]:
    counter = 0

    def next_id() -> str:
        nonlocal counter
        while f"{prefix}{counter}" in taken:
            counter += 1
        taken.add(f"{prefix}{counter}")
        return f"{prefix}{counter}"

    return next_id


def cluster_documents(texts: Sequence[str], given: Sequence[str | None] | None = None,
                      options: ClusterOptions = ClusterOptions(),
                      on_progress: Callable[[str, int, int], None] | None = None) -> Clustering:
    """Assign every document to a cluster. `given[i]` is the cluster the file named, or None.
    `on_progress(stage, done, total)`: ("embed", documents embedded, documents) after every batch
    of the embedder (when there is one), then ("cluster", 0, 1) as k-means starts."""
    with threadpool_limits(limits=options.blas_threads):
        return _cluster(texts, given, options, on_progress)


def _embed(texts: Sequence[str], options: ClusterOptions, on_progress) -> np.ndarray:
    embedder = options.embedder
    if on_progress is None:
        return embedder(texts)
    on_progress("embed", 0, len(texts))
    try:
        accepts = "on_progress" in inspect.signature(embedder).parameters
    except (TypeError, ValueError):
        accepts = False
    if accepts:
        vectors = embedder(texts, on_progress=lambda done, total: on_progress("embed", done, total))
    else:  # an embedder without a progress callback: one step
        vectors = embedder(texts)
        on_progress("embed", len(texts), len(texts))
    return vectors


def _cluster(texts: Sequence[str], given: Sequence[str | None] | None,
             options: ClusterOptions, on_progress=None) -> Clustering:
    if options.min_size < 1 or options.target_size < options.min_size:
        raise ValueError("need 1 <= min_size <= target_size")
    given = list(given) if given is not None else [None] * len(texts)
    if len(given) != len(texts):
        raise ValueError("texts and given clusters differ in length")
    notes: list[str] = []
    if not texts:
        return Clustering([], [], notes)
    matrix, terms = _vectorize(texts, options)

    named: dict[str, list[int]] = {}
    free: list[int] = []
    for index, name in enumerate(given):
        (named.setdefault(name, []) if name is not None else free).append(index)

    if options.embedder is not None:
        vectors = normalize(np.asarray(_embed(texts, options, on_progress), dtype=np.float32))
    if on_progress is not None:
        on_progress("cluster", 0, 1)
    if options.embedder is None:
        vectors = _reduce(matrix, options)
    new_groups: list[list[int]] = []
    if free and named and len(free) < options.min_size:
        # Too few to form a set of their own: each joins the named cluster it resembles most.
        names = sorted(named)
        similarity = np.asarray(vectors[free] @ _centroids(vectors, [named[n] for n in names]).T)
        for index, row in zip(free, similarity):
            named[names[int(np.argmax(row))]].append(index)
        notes.append(f"{len(free)} document(s) without a cluster joined the most similar named cluster")
    elif free:
        if len(free) < 2 * options.min_size:
            new_groups = [free]  # cannot make two sets of min_size: one set
        else:
            new_groups = _dissolve_small(vectors, _split_large(vectors, free, options), options.min_size)
    for name, members in named.items():
        if len(members) < options.min_size:
            notes.append(f"cluster '{name}' from the file has {len(members)} document(s), "
                         f"fewer than {options.min_size}; kept as given")

    groups: list[ClusterGroup] = []
    for name in sorted(named):
        members = sorted(named[name])
        groups.append(ClusterGroup(name, _label(matrix, terms, members, options.label_terms), members, True))
    next_id = _fresh_ids(options.id_prefix, set(named))
    # Order new groups by their first document so ids follow the input order.
    for members in sorted(new_groups, key=lambda g: g[0]):
        groups.append(ClusterGroup(next_id(), _label(matrix, terms, members, options.label_terms),
                                   members, False))
    assignment = [""] * len(texts)
    for group in groups:
        for index in group.members:
            assignment[index] = group.id
    return Clustering(groups, assignment, notes)
