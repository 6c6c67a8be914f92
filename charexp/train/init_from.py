"""init_from: the checkpoint a new run starts from, and what the run takes from it (architecture, split).

Keys the config or command line sets explicitly (`cfg.model_fields_set`) win; the others follow the checkpoint,
so that `configs/phase2.yaml --init_from=RUN_ID:epoch-1` works after any phase 1, as nanoGPT's resume does.
"""

from __future__ import annotations

from charexp.config import Config
from charexp.data.corpus import Corpus, fingerprint_test_set
from charexp.errors import CharexpError
from charexp.store.artifacts import ArtifactStore
from charexp.store.best import describe_test_set
from charexp.store.checkpoint import Checkpoint, load_checkpoint
from charexp.store.references import resolve_artifact

ARCHITECTURE = ("layers", "hidden", "embed")  # what the weights' shapes fix; the vocabulary comes with them too
INIT_REQUIRED = "required"  # a config's `init_from: required`: the user must name the model (configs/phase2.yaml)


def load_init(cfg: Config) -> Checkpoint | None:
    if not cfg.init_from:
        return None
    if cfg.init_from == INIT_REQUIRED:
        raise CharexpError(f"this config needs the model to start from, and init_from is not given; pass "
                           f"--init_from=RUN_ID:epoch-1 (that run's epoch-1 model) or --init_from=vN (in a sweep "
                           f"YAML: init_from's value){runs_hint(cfg)}")
    resolved = resolve_artifact(cfg.init_from, cfg.artifacts_dir, cfg.artifact_name, project=cfg.wandb_project,
                                entity=cfg.wandb_entity)
    ckpt = load_checkpoint(resolved.path)
    ckpt.source = resolved.note
    return ckpt


def runs_hint(cfg: Config) -> str:
    """The runs with an epoch-1 version in the local store, newest last (empty when there is none)."""
    store = ArtifactStore(cfg.artifacts_dir, cfg.artifact_name)
    if not store.index_path.is_file():
        return f" (the local store {store.dir} is empty: train phase 1 first, e.g. make quick)"
    try:
        runs = dict.fromkeys(str(v["run_id"]) for v in store.read_index()["versions"]
                             if v.get("run_id") and v.get("epoch") == 1)
    except CharexpError:
        return ""
    return f" (runs with an epoch-1 model here, newest last: {', '.join(runs)})" if runs else ""


def adopt_architecture(cfg: Config, init: Checkpoint | None) -> Config:
    """The checkpoint's layers, hidden and embed for every one the config leaves unset; one sentence naming every
    conflict when explicit settings disagree with the weights."""
    if init is None:
        return cfg
    theirs = {key: getattr(init.config, key) for key in ARCHITECTURE}
    explicit = [key for key in ARCHITECTURE if key in cfg.model_fields_set]
    conflicts = [key for key in explicit if getattr(cfg, key) != theirs[key]]
    if conflicts:
        has = ", ".join(f"{k}={theirs[k]}" for k in conflicts)
        sets = ", ".join(f"{k}={getattr(cfg, k)}" for k in conflicts)
        raise CharexpError(f"init_from {cfg.init_from!r} has {has} but this config sets {sets}; remove "
                           f"{'that key' if len(conflicts) == 1 else 'those keys'} to take the checkpoint's "
                           f"(or set {', '.join(f'{k}: {theirs[k]}' for k in conflicts)})")
    changed = {k: v for k, v in theirs.items() if k not in explicit and getattr(cfg, k) != v}
    if not changed:
        return cfg
    new = cfg.updated(changed, source="init_from's checkpoint")
    # still not the user's choice: a sweep's second prepare() adopts them again instead of checking them
    object.__setattr__(new, "__pydantic_fields_set__", set(cfg.model_fields_set))
    return new


def adopted_line(cfg: Config, init: Checkpoint) -> str | None:
    """What the run took from the checkpoint, for the console: the architecture keys it did not set itself."""
    adopted = [key for key in ARCHITECTURE if key not in cfg.model_fields_set]
    if not adopted:
        return None
    values = ", ".join(f"{k}={getattr(init.config, k)}" for k in adopted)
    return f"architecture from init_from's checkpoint: {values}"


def adopt_split(cfg: Config, init: Checkpoint | None) -> Config:
    """An init_from run splits the data as its checkpoint's run did, unless the config sets split_seed itself:
    a different split would put part of the checkpoint's training data into this run's test set."""
    if init is None or "split_seed" in cfg.model_fields_set or init.config.split_seed == cfg.split_seed:
        return cfg
    return cfg.updated({"split_seed": init.config.split_seed}, source="init_from's checkpoint")


def split_note(corpus: Corpus, init: Checkpoint | None) -> str | None:
    """A line when this run's test set is not the one its init_from checkpoint was trained beside."""
    theirs = (init.meta.get("test_set") or {}) if init else {}
    if not isinstance(theirs, dict) or not theirs.get("id") or theirs["id"] == fingerprint_test_set(corpus)["id"]:
        return None
    return (f"note: init_from's checkpoint was trained beside another test set ({describe_test_set(theirs)}); "
            "this run's test/loss may include utterances it trained on, and it does not compete with that "
            "checkpoint for best-test-loss")
