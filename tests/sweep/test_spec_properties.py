"""Properties of the sweep YAML reader: whatever the file holds, load_sweep_spec gives a SweepSpec or one sentence."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from charexp.sweep.spec import SweepSpec, load_sweep_spec

from conftest import REPO
from properties import damaged, floats, json_values, parsed_or_refused, scratch

SHIPPED = {name: (REPO / "sweeps" / name).read_bytes() for name in ("lr.yaml", "arch.yaml", "lr_bayes.yaml")}
TRAIN_PY = (REPO / "train.py").read_bytes()


def load(data: bytes) -> SweepSpec | None:
    """The spec of `data` as sweep.yaml in a directory holding charexp's train.py (so its keys are checked)."""
    with scratch() as folder:
        (folder / "train.py").write_bytes(TRAIN_PY)
        (folder / "sweep.yaml").write_bytes(data)
        spec = parsed_or_refused(lambda: load_sweep_spec(folder / "sweep.yaml", cwd=folder))
    assert spec is None or (isinstance(spec, SweepSpec) and spec.method in ("grid", "random", "bayes"))
    return spec


@given(st.binary(max_size=300))
@example(b"method: 2001-13-45\n")  # a date-like scalar that is no date: PyYAML raised ValueError
@example(b"[" * 2000)  # RecursionError
@example(b"method: grid\nparameters:\n  \"l\\nr\": 3\n")  # a parameter name with a newline: a two-line message
@example(("a: &a [1,1,1,1,1,1,1,1,1]\n" + "".join(f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in
          zip("abcdefgh", "bcdefghi")) + "method: grid\nparameters: {lr: {values: [0.1]}}\n").encode())  # 9^9 items
def test_any_bytes_as_a_sweep_file_load_or_give_one_sentence(data):
    load(data)


@given(st.sampled_from(sorted(SHIPPED)).flatmap(lambda name: damaged(SHIPPED[name])))
def test_a_damaged_shipped_sweep_loads_or_gives_one_sentence(data):
    load(data)


param_specs = st.fixed_dictionaries({}, optional={
    "values": st.lists(json_values(3), max_size=4), "value": json_values(3),
    "min": st.integers(-5, 5) | floats(-5, 5), "max": st.integers(-5, 10) | floats(-5, 10),
    "distribution": st.sampled_from(["uniform", "int_uniform", "log_uniform_values", "categorical", "normal",
                                     "q_uniform", "nonsense"]),
    "q": st.integers(-1, 3)})
sweeps = st.fixed_dictionaries(
    {"method": st.sampled_from(["grid", "random", "bayes"]) | json_values(2),
     "parameters": st.dictionaries(st.sampled_from(["lr", "hidden", "layers", "seed", "dropout", "nope"]),
                                   param_specs | json_values(2), max_size=3)},
    optional={"program": st.sampled_from(["train.py", "missing.py"]) | json_values(1),
              "metric": st.fixed_dictionaries({}, optional={"name": st.sampled_from(["test/loss"]) | json_values(1),
                                                            "goal": st.sampled_from(["minimize", "maximize", "up"]),
                                                            "target": json_values(1)}) | json_values(1),
              "early_terminate": st.sampled_from([{"type": "hyperband", "min_iter": 3}]) | json_values(1),
              "run_cap": json_values(1), "command": st.lists(st.text(max_size=10), max_size=3) | json_values(1),
              "project": json_values(1), "name": json_values(1)})


@given(sweeps)
@example({"method": "grid", "parameters": {"lr": {"values": [float("nan")]}}, "program": "train.py"})
def test_any_sweep_mapping_loads_or_gives_one_sentence(config):
    spec = load(yaml.safe_dump(config, allow_unicode=True).encode("utf-8"))
    if spec is not None:
        assert spec.params == list(config["parameters"]) and all(isinstance(c, str) for c in spec.command)


def test_the_shipped_sweeps_load():
    for name, data in SHIPPED.items():
        assert load(data) is not None, name
    assert Path(REPO / "sweeps" / "lr.yaml").is_file()
