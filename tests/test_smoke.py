from charexp.train import main
from charexp.rundir import RunDir


def test_tiny_run_finishes(tiny_config, tmp_path):
    assert main(["--config", str(tiny_config())]) == 0
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1
    summary = RunDir(tmp_path / "runs", runs[0].name).read_summary()
    assert summary["state"] == "finished"
