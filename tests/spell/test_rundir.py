"""spell/rundir.py: the run folder's one contract (checkpoint completeness, `latest`, the fence)."""

import sys

from spell import rundir
from tests.support import fake_checkpoint


def test_latest_is_what_the_pointer_names_when_complete_else_the_newest_complete(tmp_path):
    fake_checkpoint(tmp_path, 1)
    fake_checkpoint(tmp_path, 2, latest=False)
    root = tmp_path / rundir.CHECKPOINTS
    assert rundir.latest_checkpoint(root).name == "step-000001"  # the pointer wins
    (root / rundir.LATEST).write_text("step-000009\n")  # names nothing complete
    assert rundir.latest_checkpoint(root).name == "step-000002"
    (root / "step-000003" / "model").mkdir(parents=True)  # half written: no state, no config
    (root / ".incomplete-step-000004").mkdir()
    assert [p.name for p in rundir.list_checkpoints(root)] == ["step-000001", "step-000002"]
    assert rundir.resume_step(tmp_path) == 2
    assert rundir.resume_step(tmp_path / "nothing") is None


def test_the_fence_names_the_attempt_that_owns_the_folder(tmp_path):
    assert rundir.owner(tmp_path) is None and rundir.owns(tmp_path, 1)  # the CLI on its own
    rundir.claim(tmp_path, 2)
    assert rundir.owner(tmp_path) == 2
    assert rundir.owns(tmp_path, 2) and not rundir.owns(tmp_path, 1)
    assert [p.name for p in tmp_path.iterdir()] == [rundir.FENCE]  # atomic: no temporary left


def test_it_is_torch_free(tmp_path):
    import subprocess

    code = "import sys, spell.rundir; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], cwd=rundir.Path(__file__).resolve().parents[2]).returncode == 0
