"""Properties of a sweep's state.json: whatever the file holds, load_state gives a SweepState whose fields
have their declared types, or one sentence; a state written by save_state reads back equal."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import get_type_hints

from hypothesis import example, given
from hypothesis import strategies as st

from charexp.sweep.state import RunRecord, SweepState, _of_type, load_state, save_state

from properties import damaged, floats, json_values, parsed_or_refused, scratch

finite = floats(allow_nan=False, allow_infinity=False)
plain = st.none() | st.booleans() | st.integers(-10**6, 10**6) | finite | st.text(max_size=10)
params = st.dictionaries(st.text(max_size=8), plain | st.lists(plain, max_size=3), max_size=4)
runs = st.builds(RunRecord, run_id=st.text(min_size=1, max_size=8), params=params,
                 state=st.sampled_from(["pending", "running", "finished", "failed", "stopped", "preempted"]),
                 exit_code=st.none() | st.integers(-9, 255), metric=st.none() | finite,
                 summary=st.dictionaries(st.text(max_size=8), plain, max_size=3), pid=st.none() | st.integers(1, 2**22),
                 launches=st.integers(0, 9), requeue=st.booleans())
states = st.builds(SweepState, sweep_id=st.text(min_size=1, max_size=8), project=st.text(max_size=8),
                   method=st.sampled_from(["grid", "random", "bayes"]),
                   metric=st.fixed_dictionaries({"name": st.text(max_size=10), "goal": st.sampled_from(["minimize",
                                                                                                     "maximize"])}),
                   config=st.dictionaries(st.text(max_size=8), plain, max_size=3), created=st.text(max_size=30),
                   finished=st.booleans(), runs=st.lists(runs, max_size=4), count=st.none() | st.integers(1, 100),
                   workers=st.integers(1, 8))

with scratch() as _folder:
    save_state(_folder, SweepState("abc12345", "charexp", "grid", {"name": "test/loss", "goal": "minimize"},
                                   {"method": "grid"}, "2026-01-01T00:00:00", runs=[RunRecord("r1", {"lr": 0.1})]))
    VALID = (_folder / "state.json").read_bytes()


def well_typed(obj: object) -> bool:
    hints = get_type_hints(type(obj))
    return all(f.name == "runs" or _of_type(getattr(obj, f.name), hints[f.name]) for f in fields(obj))


def load(data: bytes) -> SweepState | None:
    with scratch() as folder:
        (folder / "state.json").write_bytes(data)
        state = parsed_or_refused(lambda: load_state(folder))
    if state is not None:
        assert isinstance(state, SweepState) and well_typed(state) and all(map(well_typed, state.runs))
        assert all(isinstance(r, RunRecord) and r.run_id for r in state.runs)
    return state


@given(st.binary(max_size=300))
@example(b"[" * 100_000)  # RecursionError from json.loads
@example(b'{"runs": [], "sweep_id": ' + b"1" * 5000 + b"}")  # an int past 4300 digits: ValueError
def test_any_bytes_as_state_json_load_or_give_one_sentence(data):
    load(data)


@given(damaged(VALID))
def test_a_damaged_state_json_loads_or_gives_one_sentence(data):
    load(data)


@given(st.dictionaries(st.sampled_from([f.name for f in fields(SweepState)]), json_values(4)),
       st.lists(st.dictionaries(st.sampled_from([f.name for f in fields(RunRecord)]), json_values(3)), max_size=3))
@example({"sweep_id": "s", "project": "p", "method": "grid", "metric": {}, "config": {}, "created": "now"},
         [{"run_id": "r1", "params": 5}])  # loaded as it was; the runner then failed on params.items()
@example({"sweep_id": "s", "project": "p", "method": "grid", "metric": {}, "config": {}, "created": "now",
          "workers": "2"}, [])  # workers as text
def test_any_fields_of_any_kind_load_typed_or_give_one_sentence(top, run_list):
    load(json.dumps({**top, "runs": run_list}).encode())


@given(states)
def test_a_saved_state_reads_back_equal(state):
    with scratch() as folder:
        save_state(folder, state)
        assert load_state(folder).to_dict() == state.to_dict()
