"""Properties of the config readers: a YAML file and `--key=value` overrides, whatever they hold, give a valid
Config or one sentence; valid configs round-trip through both."""

from __future__ import annotations

import json

import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from charexp.config import KEYS, Config, build_config, load_config, parse_cli_value, read_yaml_config
from charexp.train.args import parse_train_args

from conftest import REPO
from properties import damaged, floats, json_values, one_sentence, parsed_or_refused, scratch

STARTREK = (REPO / "configs" / "startrek.yaml").read_bytes()
BOMB = "a: &a [1,1,1,1,1,1,1,1,1]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi")) + "lr: *i\n"


def load_yaml_file(data: bytes) -> Config | None:
    with scratch() as folder:
        path = folder / "c.yaml"
        path.write_bytes(data)
        config = parsed_or_refused(lambda: build_config(read_yaml_config(path), source=str(path)))
    assert config is None or isinstance(config, Config)
    return config


@given(st.binary(max_size=300))
@example(b"lr: 2001-13-45\n")  # a date-like scalar that is no date: PyYAML raised ValueError
@example(b"lr: !!int abc\n")  # an explicit tag the value does not fit: ValueError too
@example(b"[" * 2000)  # nesting past the recursion limit: RecursionError
@example(b"seed: 100000000000000000000000\n")  # accepted, then torch.manual_seed overflowed at training
@example(b"device: 'cuda:\xd9\xa1'\n")  # an Arabic-Indic digit passed isdigit(); torch refuses it
@example(b'"a\\nb": 1\n')  # an unknown key with a newline in it made the message two lines
@example(BOMB.encode())  # aliases describing 9^9 items: quoting the value in the message never finished
def test_any_bytes_as_a_config_file_load_or_give_one_sentence(data):
    load_yaml_file(data)


@given(damaged(STARTREK))
def test_a_damaged_shipped_config_loads_or_gives_one_sentence(data):
    load_yaml_file(data)


config_like = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=10), json_values(6), max_size=6)


@given(config_like)
def test_any_mapping_of_values_loads_or_gives_one_sentence(values):
    load_yaml_file(yaml.safe_dump(values, allow_unicode=True).encode("utf-8"))


# Values each key accepts, for the round trips.
NUMBERS = {"lr": floats(1e-6, 10), "lr_decay": floats(0.01, 1), "dropout": floats(0, 0.99),
           "hidden": st.integers(1, 8192), "layers": st.integers(1, 16), "epochs": st.integers(1, 10**6),
           "seed": st.integers(0, 2**32 - 1), "split_seed": st.integers(-10**12, 10**12),
           "test_fraction": floats(0.01, 0.99), "amp": st.booleans(), "reject_worse": st.booleans(),
           "grad_clip": floats(0, 100), "sample_top_k": st.integers(0, 1000)}
valid_values = st.fixed_dictionaries({}, optional=NUMBERS)


@given(valid_values)
def test_a_valid_config_round_trips_through_yaml(values):
    config = build_config(values)
    assert load_yaml_file(yaml.safe_dump(config.to_dict()).encode()) == config


@given(valid_values)
def test_a_valid_config_round_trips_through_key_value_arguments(values):
    config = build_config(values)
    argv = [f"--{key}={json.dumps(value) if not isinstance(value, bool) else value}" for key, value in values.items()]
    assert load_config(None, parse_train_args(argv).overrides) == config


@given(st.text())
@example("[" * 100_000)  # json.loads raised RecursionError
@example("1" * 5000)  # an int past Python's 4300-digit limit: json.loads raised ValueError
def test_any_command_line_value_parses(text):
    parse_cli_value(text)  # never raises: what is not JSON stays text, and the config judges it


@given(st.sampled_from(KEYS), st.text().filter(lambda t: "\x00" not in t))
@example("lr", "1" * 5000)
@example("lr", "[" * 100_000)
def test_any_key_value_argument_gives_a_config_or_one_sentence(key, text):
    args = parsed_or_refused(lambda: parse_train_args([f"--{key}={text}"]))
    if args is not None:
        config = parsed_or_refused(lambda: load_config(None, args.overrides))
        assert config is None or isinstance(config, Config)


@given(st.lists(st.text(min_size=1).filter(lambda t: not t.startswith("-") and "\x00" not in t), max_size=3))
@example(['{"lr": ' + "1" * 5000 + "}"])  # a JSON object argument with a huge int: ValueError
@example(["{" * 100_000])
@example(["a\nb=1"])
def test_any_positional_arguments_give_a_config_or_one_sentence(items):
    args = parsed_or_refused(lambda: parse_train_args(items))
    if args is not None:
        parsed_or_refused(lambda: load_config(None, args.overrides))


def test_the_messages_quote_a_huge_value_briefly():
    with scratch() as folder:
        (folder / "c.yaml").write_text("data: [" + ", ".join(["1"] * 50_000) + "]\n")
        try:
            build_config(read_yaml_config(folder / "c.yaml"))
        except Exception as err:  # noqa: BLE001 - the type is asserted below
            assert "config key 'data'" in one_sentence(err)
        else:
            raise AssertionError("a list as data was accepted")
