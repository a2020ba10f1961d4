"""The JSONL export of labelled judgments (to evaluate or train verifiers)."""

import json

from webapp.audits import services

from .conftest import queue_item


def test_it_exports_one_line_per_labelled_judgment(people, run):
    labelled = queue_item(run, verifier_yes=True, needed=2, step=4, task="doc_mc",
                          extra={"options": {"A": "x", "B": "y", "C": "z", "D": "w"}, "extracted_answer": "B",
                                 "doc_ids": ["d1", "d2"]})
    queue_item(run)  # not labelled: not exported
    services.submit_label(people.annotator, labelled, "not_equivalent", "picked B, reference is A")
    services.submit_label(people.annotator2, labelled, "not_equivalent")
    lines = list(services.export_jsonl(run))
    assert len(lines) == 1 and lines[0].endswith("\n")
    row = json.loads(lines[0])
    assert row["item"] == labelled.pk and row["sample"] == labelled.sample_id and row["run"] == run.pk
    assert (row["step"], row["task"], row["stage"], row["reason"]) == (4, "doc_mc", 0, "random")
    assert (row["question"], row["reference"]) == ("Which city hosts the mill?", "Lisbon")
    assert row["options"]["A"] == "x" and row["extracted_answer"] == "B" and row["doc_ids"] == ["d1", "d2"]
    assert (row["verdict"], row["majority"], row["votes"], row["verifier_yes"]) == ("YES", "1", [1, 1, 1], True)
    assert [(lab["annotator"], lab["label"]) for lab in row["labels"]] == [
        ("annotator", "not_equivalent"), ("annotator2", "not_equivalent")]
    assert row["labels"][0]["note"] == "picked B, reference is A"
    assert row["human_equivalent"] is False


def test_it_exports_ties_with_no_human_truth(people, run):
    item = queue_item(run, needed=2)
    services.submit_label(people.annotator, item, "equivalent")
    services.submit_label(people.annotator2, item, "not_equivalent")
    assert json.loads(next(services.export_jsonl(run)))["human_equivalent"] is None
