"""Fixtures of the fault suite: the uninterrupted run every faulty run is compared with."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from charexp.store.checkpoint import load_state
from charexp.tracking.rundir import RunDir
from faults.helpers import FAULT_CONFIG, REJECTING, check_store

from conftest import write_tiny_csv
from foundation import climbing_lr, isolate_env, only_run_id, run_main, write_config


@dataclass(frozen=True)
class Straight:
    root: Path
    run_id: str

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def state_path(self) -> Path:
        return self.root / "runs" / self.run_id / "state.pt"

    @property
    def index(self) -> dict:
        return json.loads((self.artifacts / "charlstm" / "index.json").read_text())


@pytest.fixture(scope="package")
def straight(tmp_path_factory) -> Straight:
    """FAULT_CONFIG trained once, start to end, with nothing going wrong (in process, about 3 s)."""
    root = tmp_path_factory.mktemp("straight")
    with pytest.MonkeyPatch.context() as mp:
        isolate_env(mp, root)
        data = write_tiny_csv(root)
        code, log = run_main(["--config", str(write_config(root / "fault.yaml", data, **FAULT_CONFIG))])
        assert code == 0, log
    run = Straight(root, only_run_id(root / "runs"))
    check_store(run.artifacts)
    return run


@pytest.fixture
def fault_config(tmp_path: Path, tiny_csv: Path):
    """The straight run's config, written into this test's directory (plus overrides)."""

    def make(**overrides) -> Path:
        return write_config(tmp_path / "fault.yaml", tiny_csv, **{**FAULT_CONFIG, **overrides})

    return make


@pytest.fixture(scope="package")
def straight_rejecting(tmp_path_factory) -> Path:
    """REJECTING trained once, start to end, with nothing going wrong."""
    root = tmp_path_factory.mktemp("straight-rejecting")
    with pytest.MonkeyPatch.context() as mp:
        isolate_env(mp, root)
        code, log = run_main(["--config",
                              str(write_config(root / "r.yaml", write_tiny_csv(root), **REJECTING, lr=climbing_lr()))])
        assert code == 0, log
    run = RunDir(root / "runs", only_run_id(root / "runs"))
    assert load_state(run.state_path)["rejections"]["rejected"] == [3]
    return root
