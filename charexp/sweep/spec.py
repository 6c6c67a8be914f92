"""A W&B sweep YAML, read and checked once before any run starts.

Validation is the `sweeps` package's own (the schema W&B's server uses), plus a dry-run
proposal, so an offline sweep refuses exactly what `wandb sweep` would refuse. For charexp's
train.py, every parameter must also be a config key with values the config accepts.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from charexp.errors import CharexpError
from charexp.untrusted import BadYaml, load_yaml, short_repr

METHODS = ("grid", "random", "bayes")
DEFAULT_COMMAND = ["${env}", "${interpreter}", "${program}", "${args}"]
DEFAULT_PROJECT = "charexp"
KEYS_DOC = "https://docs.wandb.ai/models/sweeps/sweep-config-keys"
# min/max of these distributions are the values themselves (log_uniform's are exponents)
VALUE_BOUNDED = {None, "uniform", "int_uniform", "q_uniform", "log_uniform_values", "q_log_uniform_values",
                 "inv_log_uniform_values"}


@dataclass
class SweepSpec:
    source: str  # the path as the user gave it, for messages
    text: str  # the YAML exactly as given (copied into the sweep directory)
    config: dict[str, Any]  # what the sweeps engine gets
    project: str
    entity: str | None
    program: str | None
    command: list[str]
    is_charexp: bool
    params: list[str] = field(default_factory=list)  # YAML order, for tables and args

    @property
    def method(self) -> str:
        return self.config["method"]

    @property
    def metric_name(self) -> str | None:
        return (self.config.get("metric") or {}).get("name")

    @property
    def goal(self) -> str:
        return (self.config.get("metric") or {}).get("goal", "minimize")

    @property
    def target(self) -> float | None:
        return (self.config.get("metric") or {}).get("target")

    @property
    def run_cap(self) -> int | None:
        return self.config.get("run_cap")

    @property
    def early_terminate(self) -> bool:
        return bool(self.config.get("early_terminate"))

    def runs_dir(self, params: dict[str, Any], cwd: Path) -> str:
        """Where charexp's train.py puts a run's directory, as train.py decides it: the run's swept runs_dir,
        else a --runs_dir in the command, else the runs_dir of the command's --config file, else the default."""
        from charexp.config import Config

        default = Config.model_fields["runs_dir"].default
        if isinstance(params.get("runs_dir"), str):
            return params["runs_dir"]
        fixed = [token for token in self.command if not token.startswith("${")]  # ${args} are the params
        if value := _flag(fixed, "runs_dir"):
            return value
        if not (self.is_charexp and (config := _flag(fixed, "config"))):
            return default
        try:
            loaded = load_yaml((cwd / config).read_text(encoding="utf-8"))  # an absolute path stays itself
        except (OSError, UnicodeDecodeError, BadYaml):
            return default  # train.py will say what is wrong with it
        found = loaded.get("runs_dir") if isinstance(loaded, dict) else None
        return found if isinstance(found, str) else default


def _flag(tokens: list[str], name: str) -> str | None:
    """The last value of --NAME=VALUE or --NAME VALUE among command-line tokens."""
    value = None
    for i, token in enumerate(tokens):
        if token.startswith(f"--{name}="):
            value = token.split("=", 1)[1]
        elif token == f"--{name}" and i + 1 < len(tokens):
            value = tokens[i + 1]
    return value


def quiet_sweeps():
    """Import the engine without its two pydantic deprecation warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import sweeps
    return sweeps


def read_sweep_yaml(path: str | Path) -> tuple[str, dict[str, Any]]:
    path = Path(path)
    hint = "pass a W&B sweep YAML such as sweeps/lr.yaml"
    if not path.exists():
        raise CharexpError(f"sweep config {path} does not exist; {hint}")
    if path.is_dir():
        raise CharexpError(f"sweep config {path} is a directory; {hint} (to continue a sweep use --resume {path})")
    try:
        text = path.read_text(encoding="utf-8")
        loaded = load_yaml(text)
    except (BadYaml, UnicodeDecodeError, OSError) as err:
        line = f" (line {err.line})" if isinstance(err, BadYaml) and err.line else ""
        raise CharexpError(f"sweep config {path} is not valid YAML{line}; {hint}") from None
    if not isinstance(loaded, dict):
        raise CharexpError(f"sweep config {path} should be a mapping with method, metric and parameters, "
                           f"not {type(loaded).__name__}; {hint}")
    return text, loaded


def _first_line(err: BaseException) -> str:
    text = str(getattr(err, "message", None) or err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def validate_with_engine(config: dict[str, Any], source: str) -> None:
    """The sweeps package's schema, then one dry-run proposal (catches e.g. a continuous parameter in a grid)."""
    method = config.get("method")
    if method not in METHODS:
        raise CharexpError(f"method {short_repr(method)} in {source} is not supported; use grid, random or bayes")
    for key in ("scheduler", "controller"):
        if key in config:
            raise CharexpError(f"'{key}' in {source} needs W&B's server; remove it to run the sweep offline")
    sweeps = quiet_sweeps()
    params = config.get("parameters")
    if not isinstance(params, dict) or not params:
        raise CharexpError(f"{source} has no parameters; "
                           "add a 'parameters' mapping such as lr: {values: [0.001, 0.0003]}")
    for name, spec in params.items():
        if not isinstance(spec, dict):
            raise CharexpError(f"parameter {short_repr(name)} in {source} should be a mapping such as "
                               f"{{values: [...]}} or {{min: ..., max: ...}}, not {short_repr(spec)}")
    try:
        sweeps.SweepConfig(config)
    except Exception as err:  # jsonschema.ValidationError or ValueError, raised with a multi-line message
        text = str(getattr(err, "message", err))
        bad = re.search(r"invalid hyperparameter configuration: (\S+)", text)
        if bad and bad[1] in params:
            raise CharexpError(
                f"parameter '{bad[1]}' in {source} is malformed ({short_repr(params[bad[1]])}); give it values: [...], "
                "value: x, "
                "or min and max with a distribution such as uniform, int_uniform or log_uniform_values "
                f"(see {KEYS_DOC})") from None
        raise CharexpError(f"sweep config {source} is invalid: {_first_line(err)} (see {KEYS_DOC})") from None
    metric = config.get("metric")
    for needs, what in ((method == "bayes", "method bayes"), (bool(config.get("early_terminate")), "early_terminate")):
        if needs and not metric:
            raise CharexpError(f"{what} in {source} needs a metric; add metric: {{name: test/loss, goal: minimize}}")
    try:
        sweeps.next_run(config, [], validate=True)
        if config.get("early_terminate"):
            sweeps.stop_runs(config, [], validate=True)
    except Exception as err:
        raise CharexpError(f"sweep config {source} cannot be run: {_first_line(err)}") from None


def is_charexp_program(program: str | None, cwd: Path) -> bool:
    """True for charexp's train.py (or a copy of it): the only program whose config keys we know."""
    if not program:
        return False
    path = Path(program) if Path(program).is_absolute() else cwd / program
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return bool(re.search(r"^\s*(from charexp\.train(\.main|\.command)? import|import charexp\.train)", text, re.M))


def _candidate_values(spec: dict[str, Any]) -> list[Any]:
    values = list(spec.get("values") or [])
    if "value" in spec:
        values.append(spec["value"])
    if spec.get("distribution") in VALUE_BOUNDED:
        values += [spec[k] for k in ("min", "max") if k in spec]
    return values


def check_charexp_params(params: dict[str, Any], source: str) -> None:
    """Every parameter is a train.py config key, and every value it can take is one the config accepts."""
    from pydantic import ValidationError

    from charexp.config import Config, nearest_key

    for name, spec in params.items():
        if name not in Config.model_fields:
            hint = nearest_key(name)
            tail = f"did you mean '{hint}'?" if hint else "see python train.py --help for the keys"
            raise CharexpError(f"parameter {short_repr(name)} in {source} is not a config key of train.py; {tail}")
        for value in _candidate_values(spec):
            try:
                Config(**{name: value})
            except ValidationError as err:
                msg = err.errors()[0]["msg"].rstrip(".")
                raise CharexpError(f"parameter {short_repr(name)} in {source} has the value {short_repr(value)}, "
                                   f"which train.py refuses ({msg}); fix its values") from None


def load_sweep_spec(path: str | Path, project: str | None = None, cwd: Path | None = None) -> SweepSpec:
    """Read, validate and describe a sweep YAML; raises CharexpError with one sentence on any problem."""
    text, config = read_sweep_yaml(path)
    return spec_from_config(text, config, str(path), project, cwd or Path.cwd())


def spec_from_config(text: str, config: dict[str, Any], source: str, project: str | None, cwd: Path) -> SweepSpec:
    validate_with_engine(config, source)
    command = config.get("command") or list(DEFAULT_COMMAND)
    command = [str(c) for c in command]
    program = config.get("program")
    if "${program}" in command:
        if not program:
            raise CharexpError(f"{source} has no program; add program: train.py (the script the command runs)")
        where = Path(program) if Path(program).is_absolute() else cwd / program
        if not where.is_file():
            raise CharexpError(f"program {program} of {source} is not a file under {cwd}; "
                               "run charexp sweep from the directory the program path is relative to")
    charexp = is_charexp_program(program, cwd)
    if charexp:
        check_charexp_params(config["parameters"], source)
    return SweepSpec(source=source, text=text, config=config,
                     project=project or config.get("project") or DEFAULT_PROJECT, entity=config.get("entity"),
                     program=program, command=command, is_charexp=charexp, params=list(config["parameters"]))
