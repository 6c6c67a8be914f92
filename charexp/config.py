"""The one typed config object: YAML file, then `--key=value` overrides, then sweep values.

Keys are flat so that a W&B sweep parameter maps 1:1 onto a key. Everything is validated
once, here, before any work starts; errors name the key (and the closest valid key).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from charexp.errors import CharexpError
from charexp.untrusted import BadYaml, load_yaml, short_repr


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, coerce_numbers_to_str=True)

    # data
    data: str = Field("startrek", description=(
        "corpus: 'startrek' (downloaded and cached) or a path to a .csv or UTF-8 .txt file"))
    split: Literal["auto", "episode", "line"] = Field("auto", description=(
        "test split by whole episodes or by utterance; auto = episode when the file has NEXTEPISODE markers"))
    test_fraction: float = Field(0.1, gt=0, lt=1, description=(
        "fraction of episodes (or utterances) held out for test/loss"))
    # model
    layers: int = Field(2, ge=1, le=16, description="LSTM layers")
    hidden: int = Field(200, ge=1, le=8192, description="LSTM hidden units per layer")
    embed: int = Field(64, ge=1, le=8192, description="character embedding size")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout between LSTM layers and before the head")
    # optimisation
    batch_size: int = Field(64, ge=1, le=65536, description="utterances per batch, at most (grouped by similar length)")
    batch_tokens: int = Field(0, ge=0, description=(
        "also cap a batch at this many padded characters (0 = no cap): long utterances then share a batch with fewer "
        "others, short ones fill it up to batch_size"))
    max_len: int = Field(256, ge=2, description=(
        "training sequences are truncated to this many characters (eval is never truncated)"))
    epochs: int = Field(10, ge=1, description="passes over the training split")
    steps_per_epoch: int = Field(0, ge=0, description=(
        "cap iterations per epoch (0 = a full pass); for short sweeps and smoke runs"))
    max_minutes: float = Field(0.0, ge=0, description=(
        "stop after this much training wall time (0 = no limit), then evaluate and save"))
    lr: float = Field(2e-3, gt=0, le=10, description="Adam learning rate")
    lr_decay: float = Field(1.0, gt=0, le=1, description=(
        "learning-rate multiplier applied at the end of every epoch (lr_schedule: exponential)"))
    lr_schedule: Literal["exponential", "cosine", "constant"] = Field("exponential", description=(
        "exponential = lr x lr_decay^epoch; cosine = per step from lr down to min_lr at the run's last step (or its "
        "max_minutes); constant = lr"))
    min_lr: float = Field(0.0, ge=0, description="the rate cosine ends on, at the run's last step")
    warmup_steps: int = Field(0, ge=0, description=(
        "raise the rate linearly from lr/warmup_steps to the schedule's over the first N iterations (0 = none)"))
    reject_worse: bool = Field(False, description=(
        "reject an epoch whose end-of-epoch test/loss is worse than the best so far (or that turns the loss or "
        "weights non-finite): go back to the best weights, restart the optimizer, multiply the rate by reject_factor"))
    reject_factor: float = Field(0.1, gt=0, lt=1, description="rate multiplier at each rejection (reject_worse)")
    max_rejections: int = Field(3, ge=1, description=(
        "after this many rejections the run ends as finished, keeping its best version (reject_worse)"))
    grad_clip: float = Field(1.0, ge=0, description="clip the gradient norm to this value (0 = off)")
    # schedules (iterations)
    log_every: int = Field(50, ge=1, description="log train/loss and perf/chars_per_sec every N iterations")
    eval_every: int = Field(0, ge=0, description=(
        "evaluate on the whole test split every N iterations (0 = epoch ends only)"))
    sample_every: int = Field(3000, ge=0, description=(
        "sample one line per sample_chars character every N iterations (0 = epoch ends only)"))
    checkpoint_every: int = Field(500, ge=0, description="save a resume state every N iterations (0 = epoch ends only)")
    # sampling during training
    sample_chars: str = Field("KSKSKS", min_length=1, description=(
        "starting characters of the lines sampled during training"))
    sample_temperature: float = Field(1.0, gt=0, description=(
        "softmax temperature of the lines sampled during training (test/acc_sampled always samples at 1.0)"))
    sample_top_k: int = Field(0, ge=0, description="sample only from the k most likely characters (0 = all)")
    sample_max_len: int = Field(200, ge=1, description="longest sampled line, in characters")
    # runtime
    init_from: Optional[str] = Field(None, description=(
        "start from these weights, vocabulary and architecture (layers, hidden, embed unless set): artifact reference "
        "(RUN_ID:epoch-1, run-RUN_ID, v3, best-test-loss, charlstm:latest, entity/project/charlstm:v3), run or "
        "checkpoint directory; 'required' makes the user name one"))
    seed: int = Field(0, ge=0, le=2**32 - 1, description=(  # numpy's range; torch refuses seeds past 64 bits
        "seed for initialisation, batch order, dropout and sampling; runs that differ only in seed are replicates on "
        "one test set"))
    split_seed: int = Field(0, description=(
        "seed of the train/test split alone (the test set); runs with equal split_seed compete for best-test-loss"))
    device: str = Field("auto", description="auto (CUDA when available), cpu, cuda or cuda:N")
    amp: bool = Field(False, description=(
        "bf16 autocast for the forward pass (meant for CUDA; on CPU it works but is slow)"))
    # tracking and storage
    wandb_project: str = Field("charexp", min_length=1, description="W&B project (a sweep's project wins)")
    wandb_entity: Optional[str] = Field(None, description="W&B entity (team or user); default is your own")
    wandb_mode: Literal["auto", "online", "offline", "disabled"] = Field("auto", description=(
        "auto = online when an API key is configured, else offline"))
    artifact_name: str = Field("charlstm", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=128, description=(
        "artifact collection that every checkpoint becomes a version of"))
    runs_dir: str = Field("runs", description="where each run's local directory runs/<run_id>/ goes")
    artifacts_dir: str = Field("artifacts", description="local artifact store (versions, aliases, W&B downloads)")
    keep_state: bool = Field(False, description=(
        "keep runs/<run_id>/state.pt after the run finishes (a finished run is never resumed, so it is deleted; a "
        "stopped or killed run always keeps it)"))

    @field_validator("device")
    @classmethod
    def _device_known(cls, value: str) -> str:
        index = value[5:]  # isdigit() alone also takes '²' and '١', which torch refuses
        if value in ("auto", "cpu", "cuda", "mps") or (value[:5] == "cuda:" and index.isascii() and index.isdigit()):
            return value
        raise ValueError("should be auto, cpu, cuda, cuda:N or mps")

    @model_validator(mode="after")
    def _min_lr_below_lr(self) -> "Config":
        if self.min_lr > self.lr:
            raise ValueError(f"min_lr ({self.min_lr:g}) should not exceed lr ({self.lr:g})")
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()

    def updated(self, values: dict[str, Any], source: str = "override") -> "Config":
        """A new validated Config with `values` applied on top. The keys set explicitly (`model_fields_set`:
        those the YAML, command line or sweep named) stay marked, plus `values`' own."""
        new = build_config({**self.to_dict(), **values}, source=source)
        object.__setattr__(new, "__pydantic_fields_set__", set(self.model_fields_set) | set(values))
        return new


KEYS: tuple[str, ...] = tuple(Config.model_fields)


# What other tools call these keys (Lightning, HF, pytorch/examples word_language_model): a spelling that is
# no typo of ours, so difflib alone would miss it.
ALIASES = {"learning_rate": "lr", "learningrate": "lr", "lr_scheduler": "lr_schedule", "scheduler": "lr_schedule",
           "num_layers": "layers", "n_layers": "layers", "nlayers": "layers", "hidden_size": "hidden",
           "n_hidden": "hidden", "nhid": "hidden", "hidden_dim": "hidden", "emsize": "embed", "embedding_dim": "embed",
           "embedding_size": "embed", "emb": "embed", "batchsize": "batch_size", "bsz": "batch_size",
           "num_epochs": "epochs", "n_epochs": "epochs", "max_epochs": "epochs", "clip": "grad_clip",
           "gradient_clip_val": "grad_clip", "max_grad_norm": "grad_clip", "bptt": "max_len", "seq_len": "max_len",
           "warmup": "warmup_steps", "num_warmup_steps": "warmup_steps", "random_seed": "seed", "data_path": "data",
           "dataset": "data", "project": "wandb_project", "entity": "wandb_entity", "resume_from": "init_from",
           "init_checkpoint": "init_from"}


def nearest_key(name: str) -> str | None:
    name = name.replace("-", "_")
    if name.lower() in ALIASES:
        return ALIASES[name.lower()]
    match = difflib.get_close_matches(name, KEYS, n=1, cutoff=0.5)
    return match[0] if match else None


def unknown_keys_error(names: list[str], source: str) -> CharexpError:
    """Every unknown key at once, each with its likely meaning, in one sentence."""
    parts = []
    for name in names:
        hint = nearest_key(name)
        parts.append(short_repr(name) + (f" (did you mean '{hint}'?)" if hint else ""))  # repr: one line
    noun = "key" if len(names) == 1 else "keys"
    tail = "" if all(nearest_key(n) for n in names) else f"; valid keys: {', '.join(KEYS)}"
    return CharexpError(f"unknown config {noun} {', '.join(parts)} in {source}{tail}")


def check_keys(values: dict[str, Any], source: str) -> None:
    unknown = [str(key) for key in values if key not in Config.model_fields]
    if unknown:
        raise unknown_keys_error(unknown, source)


USER_FIX = "fix it in the YAML file or on the command line"


def build_config(values: dict[str, Any], source: str = "config", fix: str = USER_FIX) -> Config:
    """Validate `values`; `fix` is the advice given with a bad value (a stored config is not the user's to edit)."""
    check_keys(values, source)
    try:
        return Config(**values)
    except ValidationError as err:
        first = err.errors()[0]
        if not first["loc"]:  # a rule across keys (model validator): its message names them
            raise CharexpError(f"config: {first['msg'].removeprefix('Value error, ')}; {fix}") from None
        key = ".".join(str(part) for part in first["loc"])
        where = "" if fix == USER_FIX else f" in {source}"
        got = short_repr(first.get("input"))
        raise CharexpError(f"config key '{key}'{where}: {first['msg'].rstrip('.')} (got {got}); {fix}") from None



# Keys that say where a run's outputs go, how often it reports, or where it runs: they never change what is
# trained (eval, samples and saves draw on their own random streams; resume is bit-identical), so two runs
# that differ only in them, and in `seed`, are replicates of one experiment.
NOT_THE_EXPERIMENT = ("seed", "device", "log_every", "eval_every", "sample_every", "checkpoint_every", "sample_chars",
                      "sample_temperature", "sample_top_k", "sample_max_len", "wandb_project", "wandb_entity",
                      "wandb_mode", "artifact_name", "runs_dir", "artifacts_dir", "keep_state")


def replicate_group(values: dict[str, Any]) -> str:
    """`config-<8 hex>`: equal for runs whose configs differ only in seed (and the keys above). It is the
    W&B run group of a training run, so W&B's UI draws replicates as one line with a band, and the key by
    which `charexp report` groups a sweep's runs. Keys missing from `values` count as their defaults."""
    full = {**{k: f.default for k, f in Config.model_fields.items()}, **upgrade_stored(values)}
    kept = {k: v for k, v in full.items() if k in Config.model_fields and k not in NOT_THE_EXPERIMENT}
    digest = hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode("utf-8")).hexdigest()
    return f"config-{digest[:8]}"


def stored_config(values: dict[str, Any], source: str, fix: str) -> Config:
    """A config saved by a run (resume state, checkpoint, run directory), validated. Before split_seed
    existed, `seed` also picked the split: such a config keeps its split by reading split_seed = seed."""
    return build_config(upgrade_stored(values), source=source, fix=fix)


def upgrade_stored(values: dict[str, Any]) -> dict[str, Any]:
    """`values` with split_seed filled in the way the run that saved them split its data."""
    if isinstance(values, dict) and "split_seed" not in values:
        return {**values, "split_seed": values.get("seed", 0)}
    return values


def read_yaml_config(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise CharexpError(f"config file {path} does not exist; "
                           "pass --config with a YAML file such as configs/quick.yaml")
    if path.is_dir():
        raise CharexpError(f"config file {path} is a directory; "
                           "pass --config with a YAML file such as configs/quick.yaml")
    try:
        loaded = load_yaml(path.read_text(encoding="utf-8"))
    except (BadYaml, UnicodeDecodeError) as err:
        line = f" (line {err.line})" if isinstance(err, BadYaml) and err.line else ""
        raise CharexpError(f"config file {path} is not valid YAML{line}; "
                           "it should hold flat 'key: value' lines") from None
    if loaded is None:
        raise CharexpError(f"config file {path} is empty; it should hold flat 'key: value' lines such as 'lr: 0.002'")
    if not isinstance(loaded, dict):
        raise CharexpError(f"config file {path} should be a mapping of 'key: value' lines, "
                           f"not a {type(loaded).__name__}")
    return loaded


def parse_cli_value(text: str) -> Any:
    """A command-line value as a sweep agent writes it: `3e-4`, `True`, `None`, `[1, 2]` or text."""
    if text in ("None", "null"):
        return None
    if text in ("True", "False"):
        return text == "True"
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # not JSON, an int past Python's 4300-digit limit, or nesting too deep
        return text


def sweep_param_values() -> dict[str, Any]:
    """Values a W&B agent wrote for this run (WANDB_SWEEP_PARAM_PATH: `{key: {value: v}}`).

    wandb.init reads the same file into wandb.config; reading it here lets the whole config
    be validated before any run, file or process is started.
    """
    path = os.environ.get("WANDB_SWEEP_PARAM_PATH")
    if not path or not os.path.exists(path):
        return {}
    try:
        loaded = load_yaml(Path(path).read_text(encoding="utf-8")) or {}
    except (BadYaml, UnicodeDecodeError):
        raise CharexpError(f"sweep parameter file {path} is not valid YAML; rerun the sweep agent") from None
    if not isinstance(loaded, dict):
        raise CharexpError(f"sweep parameter file {path} is not a mapping of parameters; rerun the sweep agent")
    return {k: (v.get("value") if isinstance(v, dict) else v) for k, v in loaded.items() if k != "wandb_version"}


def load_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> Config:
    """YAML file < command-line overrides < the sweep agent's values."""
    values: dict[str, Any] = {}
    if path is not None:
        values.update(read_yaml_config(path))
    check_keys(overrides or {}, "the command line")
    values.update(overrides or {})
    sweep = sweep_param_values()
    check_keys(sweep, "the sweep parameters")
    values.update(sweep)
    return build_config(values, source=str(path) if path else "the command line")


def describe_keys() -> list[tuple[str, str, str]]:
    """(key, default, description) for every key, for --help and the README."""
    rows = []
    for name, field in Config.model_fields.items():
        rows.append((name, repr(field.default), field.description or ""))
    return rows
