"""The bad-input catalogue (issue 5): each case runs the command a user types, in a fresh interpreter, and checks
the exit code, exactly one clear sentence on stderr (no traceback, nothing else), an empty stdout, and that
nothing on disk changed: the directory holds a finished run and its artifact store, byte-identical afterwards.

Pickle payloads create a marker file when unpickled; the marker must never appear.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import yaml
from faults.helpers import snapshot

from conftest import REPO, TINY
from foundation import SUBPROCESS_ENV, python_script, reference  # noqa: F401

MARKER = "pwned"  # created in the test directory if a payload ever runs


class Payload:
    """Unpickling this creates the marker file: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def raw_pickle(tmp: Path) -> bytes:
    return pickle.dumps({"format": "charexp-state/1", "run_id": "evil", "model": Payload(tmp / MARKER)}, protocol=2)


def torch_pickle(tmp: Path) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save({"format": "charexp-state/1", "run_id": "evil", "model": Payload(tmp / MARKER)}, buffer)
    return buffer.getvalue()


# --- building the inputs ------------------------------------------------------------------------

def config(tmp: Path, name: str = "bad.yaml", **values) -> str:
    """A tiny working config with `values` on top (a value of ... removes the key)."""
    data = {"data": str(tmp / "tiny.csv"), **TINY, "wandb_mode": "disabled", **values}
    (tmp / name).write_text(yaml.safe_dump({k: v for k, v in data.items() if v is not ...}), encoding="utf-8")
    return str(tmp / name)


def text_file(tmp: Path, name: str, content: str | bytes) -> str:
    path = tmp / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return str(path)


def data(tmp: Path, name: str, content: str | bytes | None) -> str:
    """A config whose data: is `name` (created with `content` unless None)."""
    if content is not None:
        text_file(tmp, name, content)
    return config(tmp, data=str(tmp / name))


def sweep(tmp: Path, **spec) -> str:
    base = {"program": str(REPO / "train.py"), "method": "grid", "metric": {"name": "test/loss", "goal": "minimize"},
            "command": ["${env}", "${interpreter}", "${program}", "--config", config(tmp, "base.yaml"), "${args}"]}
    (tmp / "sweep.yaml").write_text(yaml.safe_dump({**base, **spec}), encoding="utf-8")
    return str(tmp / "sweep.yaml")


def checkpoint(tmp: Path, change: Callable[[Path], None]) -> str:
    """A copy of the finished run's epoch-1 checkpoint, outside the store, damaged by `change`."""
    dest = tmp / "ckpt"
    shutil.copytree(tmp / "artifacts" / "charlstm" / "v0", dest)
    change(dest)
    return str(dest)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def other_architecture(ckpt: Path) -> None:
    """Weights of one architecture under a config that names another (hidden 64, the weights are 32)."""
    text = (ckpt / "checkpoint.json").read_text()
    (ckpt / "checkpoint.json").write_text(re.sub(r'"hidden": \d+', '"hidden": 64', text))


def escape_alias(tmp: Path) -> None:
    """A hand-edited index.json whose `latest` points outside the store."""
    index = tmp / "artifacts" / "charlstm" / "index.json"
    index.write_text(re.sub(r'"latest": "v\d+"', '"latest": "../../escaped"', index.read_text()))


def resume_state(tmp: Path, content: bytes) -> None:
    (tmp / "runs" / "evil").mkdir()
    (tmp / "runs" / "evil" / "state.pt").write_bytes(content)


@dataclass
class Case:
    id: str
    command: str  # train.py | sample.py | sweep
    args: Callable[[Path], list[str]]  # builds the input files in the test directory, returns the arguments
    pattern: str  # what the one sentence must say
    code: int = 2


NO_UTTERANCES = "NEXTEPISODE,,,\nK,S,,\n,,,\nNEXTEPISODE,,,\n"
LATIN1 = "KIRK: Caf\u00e9 au lait, Mister Spock.\nSPOCK: Fascinating.\n".encode("latin-1")
BINARY = bytes(range(256)) * 8

CASES = [
    # --- config -------------------------------------------------------------------------------------------------
    Case("config-unknown-key", "train.py", lambda t: ["--config", config(t, lrr=0.1)],
         r"unknown config key 'lrr' \(did you mean 'lr'\?\) in \S+bad\.yaml$"),
    Case("config-unknown-keys-all-at-once", "train.py",
         lambda t: ["--config", config(t, lrr=0.1, hiden=3, num_layers=2)],
         r"unknown config keys 'hiden' \(did you mean 'hidden'\?\), 'lrr' \(did you mean 'lr'\?\), "
         r"'num_layers' \(did you mean 'layers'\?\) in \S+bad\.yaml$"),
    Case("config-wrong-type", "train.py", lambda t: ["--config", config(t, hidden="lots")],
         r"config key 'hidden': Input should be a valid integer.*\(got 'lots'\)"),
    Case("config-wrong-type-list", "train.py", lambda t: ["--config", config(t, lr=[0.1, 0.2])],
         r"config key 'lr': Input should be a valid number"),
    Case("config-negative-lr", "train.py", lambda t: ["--config", config(t, lr=-0.001)],
         r"config key 'lr': Input should be greater than 0 \(got -0\.001\)"),
    Case("config-zero-lr", "train.py", lambda t: ["--config", config(t, lr=0)],
         r"config key 'lr': Input should be greater than 0 \(got 0\)"),
    Case("cli-negative-lr", "train.py", lambda t: ["--config", config(t), "--lr=-3e-4"],
         r"config key 'lr': Input should be greater than 0 \(got -0\.0003\)"),
    Case("config-lr_decay-zero", "train.py", lambda t: ["--config", config(t, lr_decay=0)],
         r"config key 'lr_decay': Input should be greater than 0 \(got 0\)"),
    Case("config-lr_decay-negative", "train.py", lambda t: ["--config", config(t, lr_decay=-0.5)],
         r"config key 'lr_decay': Input should be greater than 0"),
    Case("config-lr_decay-above-one", "train.py", lambda t: ["--config", config(t, lr_decay=1.5)],
         r"config key 'lr_decay': Input should be less than or equal to 1 \(got 1\.5\)"),
    Case("cli-lr_decay-above-one", "train.py", lambda t: ["--config", config(t), "lr_decay=1.01"],
         r"config key 'lr_decay': Input should be less than or equal to 1"),
    Case("cli-unknown-option", "train.py", lambda t: ["--config", config(t), "--lrr=0.1"],
         r"unknown option '--lrr' \(did you mean '--lr'\?\)$"),
    Case("cli-common-aliases", "train.py",
         lambda t: ["--config", config(t), "--learning_rate=0.1", "--hidden_size", "64"],
         r"unknown options '--learning_rate' \(did you mean '--lr'\?\), "
         r"'--hidden_size' \(did you mean '--hidden'\?\)$"),
    Case("config-empty-yaml", "train.py", lambda t: ["--config", text_file(t, "empty.yaml", "")],
         r"config file \S+empty\.yaml is empty"),
    Case("config-only-comments", "train.py", lambda t: ["--config", text_file(t, "c.yaml", "# lr: 0.1\n")],
         r"config file \S+c\.yaml is empty"),
    Case("config-a-list", "train.py", lambda t: ["--config", text_file(t, "c.yaml", "- lr\n- 0.1\n")],
         r"should be a mapping of 'key: value' lines, not a list"),
    # --- files that are not what they should be --------------------------------------------------------------------
    Case("config-not-yaml", "train.py", lambda t: ["--config", text_file(t, "c.yaml", "lr: [0.1\nhidden: {\n")],
         r"config file \S+c\.yaml is not valid YAML \(line \d+\)"),
    Case("config-is-the-csv", "train.py", lambda t: ["--config", str(t / "tiny.csv")],
         r"config file \S+tiny\.csv (is not valid YAML|should be a mapping)"),
    Case("config-binary", "train.py", lambda t: ["--config", text_file(t, "c.yaml", BINARY)],
         r"config file \S+c\.yaml is not valid YAML"),
    Case("config-missing", "train.py", lambda t: ["--config", str(t / "nope.yaml")],
         r"config file \S+nope\.yaml does not exist"),
    Case("config-directory", "train.py", lambda t: ["--config", str(t / "runs")],
         r"config file \S+runs is a directory"),
    Case("data-missing", "train.py", lambda t: ["--config", data(t, "nope.csv", None)],
         r"data file \S+nope\.csv does not exist; check the path, or set 'data: startrek'"),
    Case("data-missing-relative", "train.py", lambda t: ["--config", config(t), "--data=data/startrek.csv"],
         r"data file data/startrek\.csv does not exist \(relative to the current directory \S+\); check the path"),
    Case("data-directory", "train.py", lambda t: ["--config", config(t, data=str(t / "artifacts"))],
         r"data path \S+artifacts is a directory"),
    Case("data-empty", "train.py", lambda t: ["--config", data(t, "empty.csv", "")],
         r"data file \S+empty\.csv is empty"),
    Case("data-whitespace", "train.py", lambda t: ["--config", data(t, "blank.txt", "\n  \n\t\n")],
         r"data file \S+blank\.txt is empty"),
    Case("data-binary", "train.py", lambda t: ["--config", data(t, "bin.csv", BINARY)],
         r"data file \S+bin\.csv looks binary"),
    Case("data-latin1", "train.py", lambda t: ["--config", data(t, "latin1.csv", LATIN1)],
         r"data file \S+latin1\.csv is not UTF-8 \(bad byte at offset 9\); convert it"),
    Case("data-csv-without-utterances", "train.py", lambda t: ["--config", data(t, "none.csv", NO_UTTERANCES)],
         r"data file \S+none\.csv holds no utterances"),
    Case("data-one-utterance", "train.py", lambda t: ["--config", data(t, "one.txt", "KIRK: Alone.\n")],
         r"at least 2 utterances"),
    # --- sweep YAML ---------------------------------------------------------------------------------------------------
    Case("sweep-bad-method", "sweep", lambda t: [sweep(t, method="sideways", parameters={"lr": {"values": [0.01]}})],
         r"method 'sideways' in \S+sweep\.yaml is not supported; use grid, random or bayes$"),
    Case("sweep-parameter-not-a-config-key", "sweep", lambda t: [sweep(t, parameters={"lrr": {"values": [0.01]}})],
         r"parameter 'lrr' in \S+sweep\.yaml is not a config key of train\.py; did you mean 'lr'\?$"),
    Case("sweep-distribution-without-max", "sweep",
         lambda t: [sweep(t, method="random", parameters={"lr": {"distribution": "log_uniform_values", "min": 1e-4}})],
         r"parameter 'lr' in \S+sweep\.yaml is malformed"),
    Case("sweep-unknown-distribution", "sweep",
         lambda t: [sweep(t, method="random",
                          parameters={"lr": {"distribution": "gaussianish", "min": 0.1, "max": 1}})],
         r"parameter 'lr' in \S+sweep\.yaml is malformed"),
    Case("sweep-min-above-max", "sweep",
         lambda t: [sweep(t, method="random", parameters={"lr": {"distribution": "uniform", "min": 1, "max": 0.1}})],
         r"sweep config \S+sweep\.yaml is invalid: lr: min 1 is not less than max 0\.1"),
    Case("sweep-value-train-refuses", "sweep", lambda t: [sweep(t, parameters={"lr": {"values": [0.01, -1]}})],
         r"parameter 'lr' in \S+sweep\.yaml has the value -1, which train\.py refuses"),
    Case("sweep-not-yaml", "sweep", lambda t: [text_file(t, "sweep.yaml", "method: grid\nparameters: {lr: [\n")],
         r"sweep config \S+sweep\.yaml is not valid YAML"),
    # --- sample.py ----------------------------------------------------------------------------------------------------
    Case("sample-prime-outside-vocabulary", "sample.py", lambda t: ["--artifact", "latest", "K\u20ac"],
         r"uses '\u20ac', which the checkpoint's vocabulary does not contain"),
    Case("sample-max-len-zero", "sample.py", lambda t: ["--max-len", "0", "K"],
         r"--max-len must be at least 1 \(got 0\)$"),
    Case("sample-negative-temperature", "sample.py", lambda t: ["--temperature", "-0.5", "K"],
         r"--temperature must be greater than 0 \(got -0\.5\)"),
    Case("sample-zero-temperature", "sample.py", lambda t: ["--temperature", "0", "K"],
         r"--temperature must be greater than 0 \(got 0\)"),
    Case("sample-unknown-alias", "sample.py", lambda t: ["--artifact", "epoch-99", "K"],
         r"'charlstm' has no version or alias 'epoch-99'; "
         r"it has: best-test-loss, best-test-loss-[0-9a-f]{8}, latest, epoch-1, epoch-2; "
         r"versions by run: [a-z0-9]{8} \(v0, v1\)$"),
    Case("sample-unknown-collection", "sample.py", lambda t: ["--artifact", "nosuch:latest", "K"],
         r"'nosuch' is neither a local artifact collection under artifacts nor a run with versions in 'charlstm'; "
         r"use NAME:ALIAS or RUN_ID:ALIAS \(see sample.py --help\)$"),
    # --- checkpoints --------------------------------------------------------------------------------------------------
    Case("checkpoint-truncated-weights", "sample.py",
         lambda t: ["--checkpoint", checkpoint(t, lambda c: truncate(c / "model.safetensors")), "K"],
         r"model\.safetensors is not a readable safetensors file .*it may be truncated"),
    Case("checkpoint-other-architecture", "sample.py",
         lambda t: ["--checkpoint", checkpoint(t, other_architecture), "K"],
         r"the weights in \S+ do not match the architecture in its config \(layers=1, hidden=64"),
    Case("init-from-other-architecture", "train.py", lambda t: ["--config", config(t, init_from="v0", hidden=64)],
         r"init_from 'v0' has hidden=32 but this config sets hidden=64; "
         r"remove that key to take the checkpoint's \(or set hidden: 32\)$"),
    Case("init-from-every-mismatch-at-once", "train.py",
         lambda t: ["--config", config(t, init_from="v0", hidden=64), "--layers=2", "--embed=8"],
         r"init_from 'v0' has layers=1, hidden=32, embed=16 but this config sets layers=2, hidden=64, embed=8; "
         r"remove those keys to take the checkpoint's \(or set layers: 1, hidden: 32, embed: 16\)$"),
    Case("phase2-without-init-from", "train.py",
         lambda t: ["--config", str(REPO / "configs" / "phase2.yaml"), f"--data={t / 'tiny.csv'}"],
         r"this config needs the model to start from, and init_from is not given; pass "
         r"--init_from=RUN_ID:epoch-1 \(that run's epoch-1 model\) or --init_from=vN \(in a sweep YAML: "
         r"init_from's value\) \(runs with an epoch-1 model here, newest last: [a-z0-9]{8}\)$"),
    Case("checkpoint-pickle-as-safetensors", "sample.py",
         lambda t: ["--checkpoint", checkpoint(t, lambda c: (c / "model.safetensors").write_bytes(raw_pickle(t))), "K"],
         r"model\.safetensors is not a readable safetensors file"),
    Case("checkpoint-torch-pickle-as-safetensors", "sample.py",
         lambda t: ["--checkpoint", checkpoint(t, lambda c: (c / "model.safetensors").write_bytes(torch_pickle(t))),
                    "K"],
         r"model\.safetensors is not a readable safetensors file"),
    Case("checkpoint-pickle-pt-file", "sample.py",
         lambda t: ["--checkpoint", text_file(t, "model.pt", torch_pickle(t)), "K"],
         r"checkpoint \S+model\.pt is a file; a checkpoint is a directory"),
    Case("resume-unknown-id-lists-only-unfinished-runs", "train.py", lambda t: ["--resume", "nosuch"],
         r"run 'nosuch' has no saved state under runs/; runs that can be resumed: none$"),
    Case("resume-finished-run-names-its-last-version", "train.py",
         lambda t: ["--resume", next(p.name for p in (t / "runs").iterdir())],
         r"run '([a-z0-9]{8})' already finished; to continue from its weights start a new run with "
         r"--init_from=run-\1 \(its last version, charlstm:v1\)$"),
    Case("resume-pickle-state", "train.py", lambda t: (resume_state(t, raw_pickle(t)), ["--resume", "evil"])[1],
         r"resume state \S+state\.pt cannot be read safely \(UnpicklingError\); start a new run instead$"),
    Case("resume-torch-pickle-state", "train.py", lambda t: (resume_state(t, torch_pickle(t)), ["--resume", "evil"])[1],
         r"resume state \S+state\.pt cannot be read safely"),
    Case("init-from-pickle-pt-file", "train.py",
         lambda t: ["--config", config(t, init_from=text_file(t, "model.pt", torch_pickle(t)))],
         r"is neither an existing checkpoint or run directory nor an artifact reference"),
    Case("store-index-truncated", "sample.py",
         lambda t: (truncate(t / "artifacts" / "charlstm" / "index.json"), ["--artifact", "latest", "K"])[1],
         r"\S+index\.json is corrupt \(not valid JSON\); restore it from backup or move \S+charlstm aside$"),
    Case("store-index-alias-escapes", "sample.py", lambda t: (escape_alias(t), ["--artifact", "latest", "K"])[1],
         r"is corrupt \('latest' points at '\.\./\.\./escaped', not a version like v3\)"),
    # --- artifact names: never outside artifacts/ ---------------------------------------------------------------------
    Case("artifact-name-dotdot", "train.py", lambda t: ["--config", config(t, artifact_name="../escaped")],
         r"config key 'artifact_name': String should match pattern"),
    Case("artifact-name-separator", "train.py", lambda t: ["--config", config(t), "--artifact_name=a/b"],
         r"config key 'artifact_name': String should match pattern"),
    Case("artifact-name-absolute", "train.py", lambda t: ["--config", config(t), f"--artifact_name={t / 'escaped'}"],
         r"config key 'artifact_name': String should match pattern"),
    Case("init-from-dotdot", "train.py", lambda t: ["--config", config(t, init_from="../escaped:latest")],
         r"is neither an existing checkpoint or run directory nor an artifact reference"),
    Case("sample-artifact-name-dotdot", "sample.py", lambda t: ["--artifact-name", "../escaped", "K"],
         r"artifact name '\.\./escaped' is not allowed; use letters"),
    Case("sample-artifact-name-dotdot-only", "sample.py", lambda t: ["--artifact", "..:latest", "K"],
         r"is neither an existing checkpoint or run directory nor an artifact reference"),
    Case("sample-artifact-dotdot-alias", "sample.py", lambda t: ["--artifact", "charlstm:..", "K"],
         r"alias '\.\.' is not allowed"),
    Case("sample-artifact-online-dotdot", "sample.py", lambda t: ["--artifact", "../escaped/x:latest", "K"],
         r"entity '\.\.' is not allowed"),
    Case("sample-artifact-deep-path", "sample.py", lambda t: ["--artifact", "../../escaped/x:latest", "K"],
         r"is neither an existing checkpoint or run directory nor an artifact reference"),
    Case("sample-artifact-backslash", "sample.py", lambda t: ["--artifact", "charlstm\\..\\..:latest", "K"],
         r"is neither an existing checkpoint or run directory nor an artifact reference"),
]


def run_command(command: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    if command == "sweep":
        return subprocess.run([sys.executable, "-m", "charexp.cli", "sweep", *args], cwd=cwd,
                              env={**os.environ, **SUBPROCESS_ENV}, capture_output=True, text=True, timeout=180)
    return python_script(command, args, cwd=cwd)


@pytest.fixture
def world(reference, tmp_path, tiny_csv) -> Path:
    """This test's directory: a finished run (runs/) and its artifact store (v0, v1, aliases), copied from the
    reference run."""
    shutil.copytree(reference.artifacts, tmp_path / "artifacts")
    shutil.copytree(reference.root / "runs", tmp_path / "runs")
    return tmp_path


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_is_one_clear_sentence_and_damages_nothing(case, world):
    args = case.args(world)
    before = snapshot(world)
    out = run_command(case.command, args, world)
    assert out.returncode == case.code, out.stderr[-3000:]
    assert "Traceback" not in out.stderr + out.stdout
    assert out.stdout == ""
    assert out.stderr.endswith("\n") and out.stderr.count("\n") == 1, f"not exactly one line:\n{out.stderr[-3000:]}"
    assert out.stderr.startswith("error: "), out.stderr
    assert re.search(case.pattern, out.stderr.rstrip("\n")), out.stderr
    assert snapshot(world) == before  # nothing written, changed or removed: the finished checkpoints are byte-identical
    assert not (world / MARKER).exists()  # no payload ever ran
    assert not (world.parent / "escaped").exists() and not (world / "escaped").exists()


def test_the_pickle_payloads_do_run_code_when_unpickled(tmp_path):
    """The catalogue's payloads are real: plain unpickling runs them (so the cases above would catch a loader that
    unpickles)."""
    import torch

    pickle.loads(raw_pickle(tmp_path))
    assert (tmp_path / MARKER).exists()
    (tmp_path / MARKER).unlink()
    # the unsafe load charexp never does: a positive control
    torch.load(io.BytesIO(torch_pickle(tmp_path)), weights_only=False)
    assert (tmp_path / MARKER).exists()
