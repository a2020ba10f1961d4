"""Corpus pipeline (readers, normalisation, dedup, numeric marking, clustering, ingest) and the
readers for public evaluation sets. Pure library: no Django import.

The pipeline entry point is `spell.data.ingest.ingest` (the submodule name shadows it here).
Names are loaded on first use, so `from spell.data.evalsets import ...` (the trainer) does not pay
for scikit-learn and datasketch, which only the ingest needs.
"""

from importlib import import_module

_EXPORTS = {
    "clustering": ["ClusterOptions", "cluster_documents"],
    "dedup": ["DedupOptions", "find_duplicates"],
    "evalsets": ["EvalItem", "EvalSetFormatError", "middle_truncate", "read_eval_set"],
    "ingest": ["CorpusFormatError", "CorpusRecord", "DocumentSet", "IngestOptions", "IngestResult",
               "document_sets", "read_corpus_jsonl", "write_corpus_jsonl"],
    "normalize": ["NormalizeOptions", "normalize_text"],
    "numeric": ["NumericThresholds", "is_numeric_document"],
    "readers": ["ErrorReason", "FileError", "RawDocument", "ReaderLimits", "read_sources"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'spell.data' has no attribute {name!r}")
    return getattr(import_module(f"spell.data.{_MODULE_OF[name]}"), name)
