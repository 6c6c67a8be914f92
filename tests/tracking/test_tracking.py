"""The reference run's own offline W&B file, read back two ways: charexp.tracking.wandb_files and
`wandb leet inspect`."""

from __future__ import annotations

import json

import pytest

from charexp.config import KEYS
from charexp.errors import CharexpError
from charexp.tracking.tracker import choose_mode
from charexp.tracking.wandb_files import find_run_files, read_run
from charexp.wandb_env import server_answers

from conftest import run_train_subprocess
from foundation import REFERENCE_LR, leet_records, leet_summary, reference  # noqa: F401


@pytest.fixture(scope="module")
def records(reference):
    return read_run(reference.wandb_file)


@pytest.fixture(scope="module")
def leet(reference):
    return leet_records(reference.wandb_file)


def test_one_offline_run_file_for_the_run(reference, records):
    assert reference.wandb_file.parent.name.startswith("offline-run-")
    assert find_run_files(reference.root / "wandb", reference.run_id) == [reference.wandb_file]
    assert records.run_id == reference.run_id and records.project == "charexp-test"
    assert records.exit_code == 0
    assert "offline" in reference.stderr and "wandb sync" in reference.stderr


def test_config_is_logged(reference, records):
    stored = reference.run_dir.read_config()
    assert {k: records.config[k] for k in KEYS} == stored
    assert records.config["lr"] == REFERENCE_LR


def test_test_loss_history_rows_match_the_local_history(reference, records):
    local = [(row["step"], row["test/loss"]) for row in reference.history() if "test/loss" in row]
    assert records.metric("test/loss") == local
    logged = [row["step"] for row in reference.history() if "train/loss" in row]
    assert [s for s, _ in records.metric("train/loss")] == logged
    for name in ("test/bpc", "test/acc_argmax", "test/acc_sampled", "lr", "epoch", "perf/chars_per_sec"):
        assert records.metric(name), name


def test_summary_keeps_the_minimum_test_loss(reference, records):
    losses = [row["test/loss"] for row in reference.history() if "test/loss" in row]
    assert records.summary["test/loss"] == {"min": min(losses)}
    assert records.summary["best_test_loss"] == min(losses)
    assert records.summary["state"] == "finished"


def test_samples_table_in_history_and_files(reference, records):
    steps = [row["_step"] for row in records.history if row.get("samples._type") == "incremental-table-file"]
    assert steps == [10, 20, 30, 40]
    tables = sorted((reference.wandb_file.parent / "files" / "media" / "table").glob("samples_*.table.json"))
    assert len(tables) == 4
    rows = []
    for path in tables:
        table = json.loads(path.read_text())
        assert table["columns"] == ["step", "epoch", "prime", "text", "note"]
        rows += [tuple(r) for r in table["data"]]
    local = [(s["step"], s["epoch"], s["prime"], s["text"], s["note"]) for s in reference.run_dir.samples()]
    assert sorted(rows) == sorted(local)


def test_model_artifacts_carry_latest_epoch_and_best_aliases(reference, records):
    models = [a for a in records.artifacts if a["name"] == "charlstm"]
    assert len(models) == 2
    for artifact in models:
        assert artifact["type"] == "model"
        assert "latest" in artifact["aliases"] and f"epoch-{artifact['metadata']['epoch']}" in artifact["aliases"]
        assert f"run-{reference.run_id}" in artifact["aliases"]  # the run-scoped alias goes to W&B too
        assert sorted(artifact["files"]) == ["checkpoint.json", "model.safetensors"]
        assert artifact["metadata"]["run_id"] == reference.run_id
    index = json.loads((reference.artifacts / "charlstm" / "index.json").read_text())
    assert [a["metadata"]["local_version"] for a in models] == ["v0", "v1"]
    for artifact in models:  # the W&B aliases are the local store's at the time of logging
        assert ("best-test-loss" in artifact["aliases"]) == (artifact["metadata"]["test_loss"] == min(
            m["metadata"]["test_loss"] for m in models[: models.index(artifact) + 1]))
    lowest = min(models, key=lambda a: a["metadata"]["test_loss"])
    assert index["aliases"]["best-test-loss"] == lowest["metadata"]["local_version"]
    assert index["aliases"][f"run-{reference.run_id}"] == "v1"  # held by the run's newest version


def test_leet_inspect_agrees(reference, records, leet):
    kinds = [r["type"] for r in leet]
    assert kinds[0] == "header" and "run" in kinds and kinds[-1] == "exit"
    run = next(r["run"] for r in leet if r["type"] == "run")
    config = run["config"]["update"]
    assert {k: config[k] for k in KEYS} == {k: records.config[k] for k in KEYS}
    history = [r["history"] for r in leet if r["type"] == "history"]
    leet_losses = [(h["step"]["num"], h["item"]["test/loss"]) for h in history if "test/loss" in h["item"]]
    assert leet_losses == records.metric("test/loss")
    tables = [h["step"]["num"] for h in history if h["item"].get("samples._type") == "incremental-table-file"]
    assert tables == [10, 20, 30, 40]
    aliases = [sorted(r["artifact"]["aliases"]) for r in leet
               if r["type"] == "artifact" and r["artifact"].get("type") == "model"]
    assert aliases == [sorted(a["aliases"]) for a in records.artifacts if a["type"] == "model"]
    summary = leet_summary(reference.wandb_file)
    assert summary["run_id"] == reference.run_id and summary["state"] == "finished" and summary["exit_code"] == 0
    assert summary["summary"]["test/loss"] == {"min": min(v for _, v in records.metric("test/loss"))}
    assert summary["config"]["lr"] == REFERENCE_LR


@pytest.fixture
def wandb_server(monkeypatch):
    """A local HTTP server standing in for W&B's, for the reachability check only (it answers every request 404)."""
    import http.server
    import threading

    class Quiet(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}")
    yield server
    server.shutdown()


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


def test_mode_choice(monkeypatch, tmp_path, wandb_server):
    mode, note = choose_mode("auto")
    assert mode == "offline" and "offline" in note and "\n" not in note
    for explicit in ("offline", "disabled"):
        assert choose_mode(explicit) == (explicit, None)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert choose_mode("auto")[0] == "disabled"
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert choose_mode("auto") == ("online", None)  # a key, and the server answers
    assert choose_mode("online") == ("online", None)
    monkeypatch.delenv("WANDB_API_KEY")
    netrc = tmp_path / "netrc"
    # wandb login writes the server's host
    netrc.write_text(f"machine 127.0.0.1\n  login user\n  password {'y' * 40}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    assert choose_mode("auto")[0] == "online"


def test_a_key_without_a_reachable_server_runs_offline_after_a_short_check(monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{closed_port()}")
    mode, note = choose_mode("auto")
    assert mode == "offline" and "did not answer" in note and "wandb sync" in note and "\n" not in note
    with pytest.raises(CharexpError,
                       match=r"wandb_mode online, but the W&B server http://127\.0\.0\.1:\d+ did not answer"):
        choose_mode("online")
    monkeypatch.setenv("WANDB_MODE", "online")
    with pytest.raises(CharexpError, match="WANDB_MODE=online, but"):
        choose_mode("auto")


def test_explicit_online_without_a_key_is_one_sentence():
    with pytest.raises(CharexpError, match="needs a W&B API key and none is configured; run 'wandb login'"):
        choose_mode("online")


def test_a_server_that_never_answers_is_not_reachable():
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection, never answers: the worst case short of a hung DNS lookup
    try:
        assert not server_answers(f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=1.0)  # silence is no answer
    finally:
        listener.close()


def test_train_with_a_key_and_no_network_trains_offline_and_says_how_to_upload(tiny_config, tmp_path):
    """A cluster node after `wandb login` on the login node: a key, no route to W&B."""
    config = tiny_config(epochs=1, steps_per_epoch=2, sample_every=0, checkpoint_every=0)
    env = {"WANDB_API_KEY": "x" * 40, "WANDB_BASE_URL": f"http://127.0.0.1:{closed_port()}"}
    proc = run_train_subprocess(["--config", str(config)], cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "did not answer within" in proc.stderr and "this run is offline" in proc.stderr
    assert "wandb sync " in proc.stderr and list((tmp_path / "wandb").glob("offline-run-*"))
    online = run_train_subprocess(["--config", str(config), "--wandb_mode=online"], cwd=tmp_path, env=env)
    assert online.returncode == 2 and "Traceback" not in online.stderr
    assert online.stderr.strip().splitlines()[-1].startswith("error: wandb_mode online, but the W&B server")
