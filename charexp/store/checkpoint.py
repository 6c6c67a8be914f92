"""Checkpoints (a directory: model.safetensors + checkpoint.json) and resume states (state.pt, laid out by ResumeState).

Nothing here unpickles: weights load through safetensors, resume states through
`torch.load(weights_only=True)`. Every write goes to a temporary name and is renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from charexp.atomic import atomic_write_bytes, fsync_dir, make_temp_dir
from charexp.config import Config, stored_config
from charexp.data.corpus import EOL, UNK, Vocab
from charexp.errors import CharexpError, disk_error
from charexp.model import CharLSTM

WEIGHTS = "model.safetensors"
META = "checkpoint.json"
FORMAT = "charexp-checkpoint/1"
STATE_FORMAT = "charexp-state/1"


@dataclass
class Checkpoint:
    model: CharLSTM
    config: Config
    vocab: Vocab
    meta: dict[str, Any]
    path: Path
    source: str | None = None  # how a reference found it (charexp.store.references.Resolved.note)


def write_checkpoint(dest: Path, model: CharLSTM, config: Config, vocab: Vocab, meta: dict[str, Any]) -> Path:
    """Write a checkpoint directory at `dest`, which must not exist yet; appears complete or not at all."""
    from safetensors.torch import save_file

    payload = {
        "format": FORMAT,
        **meta,
        "config": config.to_dict(),
        "vocab": list(vocab.chars),
        "charexp_version": _version(),
        "torch_version": torch.__version__,
    }
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = make_temp_dir(dest.parent, dest.name)
        try:
            state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
            save_file(state, str(tmp / WEIGHTS), metadata={"format": FORMAT})
            (tmp / META).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            for name in (WEIGHTS, META):
                with open(tmp / name, "rb") as f:
                    os.fsync(f.fileno())
            os.rename(tmp, dest)
            fsync_dir(dest.parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    except OSError as err:
        raise disk_error(err, "a checkpoint", dest.parent) from None
    return dest


def _version() -> str:
    from charexp import __version__

    return __version__


def read_meta(path: Path) -> dict[str, Any]:
    meta_path = Path(path) / META
    if not meta_path.is_file():
        raise CharexpError(f"{path} is not a charexp checkpoint (no {META}); "
                           "pass a checkpoint directory or an artifact reference such as best-test-loss")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError):  # bad JSON or UTF-8, an int past 4300 digits, nesting too deep
        raise CharexpError(f"{meta_path} is corrupt (not valid JSON); pick another checkpoint version") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or not isinstance(meta.get("vocab"), list):
        raise CharexpError(f"{meta_path} is not a {FORMAT} file; pick another checkpoint version")
    vocab = meta["vocab"]
    chars_ok = all(isinstance(c, str) and len(c) == 1 for c in vocab) and len(set(vocab)) == len(vocab)
    chars_ok = chars_ok and vocab[:2] == [EOL, UNK]  # every Vocab starts so: sampling stops at index 0
    if not isinstance(meta.get("config"), dict) or not chars_ok:
        raise CharexpError(f"{meta_path} is damaged (its config or vocabulary is malformed); "
                           "pick another checkpoint version")
    return meta


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> Checkpoint:
    """Load and check a checkpoint directory. A corrupt, truncated or mismatched one is a CharexpError."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_dir():
        kind = "a file" if path.exists() else "missing"
        raise CharexpError(f"checkpoint {path} is {kind}; a checkpoint is a directory holding {WEIGHTS} and {META}")
    meta = read_meta(path)
    config = stored_config(meta["config"], source=str(path / META),
                           fix="the checkpoint is inconsistent, pick another checkpoint version")
    vocab = Vocab(tuple(meta["vocab"]))
    weights = path / WEIGHTS
    if not weights.is_file():
        raise CharexpError(f"checkpoint {path} has no {WEIGHTS}; pick another checkpoint version")
    try:
        check_tensors(weights, config, len(vocab))  # from the header alone, before anything is allocated
        state = load_file(str(weights), device=str(device))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise CharexpError(f"{weights} is not a readable safetensors file ({_first_line(err)}); "
                           "it may be truncated or not a charexp checkpoint, pick another checkpoint version") from None
    bad = next((name for name, tensor in state.items() if not torch.isfinite(tensor).all()), None)
    if bad is not None:
        raise CharexpError(f"{weights} holds NaN or infinite weights (in {bad}); "
                           "the run diverged before it was saved, pick another checkpoint version")
    model = CharLSTM.from_config(config, len(vocab))
    model.load_state_dict(state, strict=True)  # names, shapes and dtypes were checked above
    return Checkpoint(model.to(device), config, vocab, meta, path)


def check_tensors(weights: Path, config: Config, vocab_size: int) -> None:
    """The names, shapes and dtypes in the safetensors header are exactly those of the config's model (built on
    the meta device: no memory), so a lying config or header is refused before any allocation."""
    from safetensors import safe_open

    with torch.device("meta"):
        expected = CharLSTM.from_config(config, vocab_size).state_dict()
    with safe_open(str(weights), framework="pt") as f:
        found = {name: f.get_slice(name) for name in f.keys()}
    problem = None
    if set(found) != set(expected):
        extra, missing = sorted(set(found) - set(expected)), sorted(set(expected) - set(found))
        problem = f"extra tensor {extra[0]}" if extra else f"no tensor {missing[0]}"
    else:
        for name, tensor in expected.items():
            shape, dtype = list(found[name].get_shape()), found[name].get_dtype()
            if shape != list(tensor.shape) or dtype != "F32":
                problem = f"{name} is {dtype} {shape}, not F32 {list(tensor.shape)}"
                break
    if problem:
        raise CharexpError(
            f"the weights in {weights} do not match the architecture in its config (layers={config.layers}, "
            f"hidden={config.hidden}, embed={config.embed}, vocab={vocab_size}; {problem}); the checkpoint is "
            "inconsistent, pick another checkpoint version")


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0][:80] if lines else type(err).__name__


@dataclass
class ResumeState:
    """The resume file's layout: everything a killed run needs to continue bit-identically (tensors stay tensors,
    so the file loads with weights_only=True)."""

    run_id: str
    config: dict[str, Any]
    vocab: list[str]
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    rng_cpu: torch.Tensor
    rng_cuda: list[torch.Tensor]
    position: dict[str, Any]  # the loop's Position (epoch, batch, step, seconds, chars)
    best: dict[str, Any]
    versions: list[str]
    published_step: int
    rejections: dict[str, Any] | None = None  # states written before reject_worse existed have none

    def to_dict(self) -> dict[str, Any]:
        # not dataclasses.asdict: it would deep-copy every tensor
        return {"format": STATE_FORMAT, **{f.name: getattr(self, f.name) for f in fields(self)}}

    @classmethod
    def from_dict(cls, state: dict[str, Any], source: str | Path = "the resume state") -> ResumeState:
        """The typed view of what load_state read; a key missing from it is one sentence."""
        names = [f.name for f in fields(cls)]
        missing = [name for name in names if name not in state and name != "rejections"]
        if missing:
            raise CharexpError(f"{source} is damaged (it has no {missing[0]!r}); start a new run instead")
        return cls(**{name: state[name] for name in names if name in state})


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Resume state (model, optimizer, RNG, position) as one atomically replaced file."""
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    try:
        atomic_write_bytes(Path(path), buffer.getvalue())
    except OSError as err:
        raise disk_error(err, "the resume state", Path(path).parent) from None


def load_state(path: Path) -> dict[str, Any]:
    """The resume file as saved (ResumeState.from_dict types it); anything unreadable or foreign is one sentence."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # weights_only refuses pickled code; any failure means "unusable"
        raise CharexpError(f"resume state {path} cannot be read safely ({type(err).__name__}); "
                           "start a new run instead") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CharexpError(f"{path} is not a charexp resume state; start a new run instead")
    return state
