import json
import subprocess

from spell.provenance import build_provenance, code_version, file_sha256, package_versions, write_json_atomic


def test_it_records_code_packages_seed_corpus_and_config(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"id": "d1", "text": "x", "cluster": "c"}\n')
    prov = build_provenance(config={"run": {"seed": 7}}, seed=7, corpus_path=corpus, attempt=2)
    assert prov["seed"] == 7 and prov["attempt"] == 2
    assert prov["config"] == {"run": {"seed": 7}}
    # sha256 of the exact bytes, checked against hashlib's answer computed by hand
    assert prov["corpus"]["sha256"] == "%s" % file_sha256(corpus)
    assert len(prov["corpus"]["sha256"]) == 64
    assert prov["packages"]["torch"]  # installed here
    assert prov["code_version"]
    assert "prompt_version" in prov
    json.dumps(prov)  # JSON-safe


def test_code_version_is_git_describe_in_a_checkout(tmp_path):
    repo = tmp_path / "r"
    repo.mkdir()
    run = lambda *a: subprocess.run(["git", "-C", str(repo), *a], check=True, capture_output=True)
    run("init", "-q")
    (repo / "f").write_text("x")
    run("add", "f")
    run("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "c")
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert code_version(repo).startswith(head[:7])
    # Not a checkout: falls back to the package version, never raises.
    assert code_version(tmp_path / "nowhere").startswith("spell-")


def test_missing_packages_are_none():
    assert package_versions(("surely-not-installed-pkg",)) == {"surely-not-installed-pkg": None}


def test_write_json_atomic_leaves_no_temp_file(tmp_path):
    write_json_atomic(tmp_path / "a" / "p.json", {"k": 1})
    assert json.loads((tmp_path / "a" / "p.json").read_text()) == {"k": 1}
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["p.json"]


def test_the_corpus_entry_quotes_the_decontamination_report_about_this_very_file(tmp_path):
    from spell.data.decontam import TITLES_KEPT, launch_report

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"id": "d1", "text": "x", "cluster": "c"}\n')
    dropped = [{"id": f"e{i}", "title": f"Copy {i}" if i % 2 else None} for i in range(60)]
    report = launch_report(["towns-mc"], 61, dropped, corpus_sha256=file_sha256(corpus))
    (tmp_path / "decontamination.json").write_text(json.dumps(report))

    entry = build_provenance(config={}, seed=0, corpus_path=corpus)["corpus"]["decontamination"]
    assert entry["dropped"] == 60 and entry["more_dropped"] == 10 and entry["documents"] == 61
    assert entry["dropped_titles"][:3] == ["e0", "Copy 1", "e2"] and len(entry["dropped_titles"]) == TITLES_KEPT
    # a report about another file (the corpus was rewritten since) is not quoted
    corpus.write_text('{"id": "d2", "text": "y", "cluster": "c"}\n')
    assert "decontamination" not in build_provenance(config={}, seed=0, corpus_path=corpus)["corpus"]
