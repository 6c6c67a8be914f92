"""`python sample.py KSKSKS` (and `charexp sample`): one generated line per starting character, from a checkpoint
or artifact.

Kept light on start-up: no wandb import unless an online artifact reference needs it.
"""

from __future__ import annotations

import sys
from typing import Optional

import typer

from charexp.errors import CharexpError, run_cli, run_typer_app

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)


def prime_hint(chars: str | None, prime: str | None) -> str | None:
    """A line when the starting characters look like a word (`kirk`): each character starts its own line, and a
    whole prime is --prime. The lines are still sampled as asked."""
    if not chars or prime is not None or len(chars) < 3 or not (chars.isalpha() and chars.islower()):
        return None
    return (f"# note: {chars!r} starts {len(chars)} lines, one per character ({', '.join(chars)}); "
            f"to start from a whole string use --prime '{chars.upper()}: ...'")


def choose_primes(chars: Optional[str], prime: Optional[str], num: int, default: str) -> list[str]:
    primes = list(chars or "")
    if prime is not None:
        primes += [prime] * num
    elif not primes:
        primes = list(default) * num if num > 1 else list(default)
    return primes


@app.command(help="Generate lines from a trained CharLSTM. Each line starts from a zero state, reads its "
                  "prime and stops at end-of-line. Example: python sample.py --artifact best-test-loss KSKSKS")
def sample(
    chars: Optional[str] = typer.Argument(
        None, help="starting characters, one line each (KSKSKS gives a KIRK/SPOCK conversation); "
                   "default: the checkpoint's sample_chars"),
    artifact: str = typer.Option(
        "best-test-loss", "--artifact", "-a",
        help="artifact reference: best-test-loss, latest, epoch-N or vN (store-wide: latest and epoch-N move with "
             "every run); RUN_ID or run-RUN_ID (that run's newest version), run-RUN_ID-best (its best), "
             "RUN_ID:ALIAS (ALIAS among that run's own versions: epoch-N, best-test-loss, vN), NAME:ALIAS "
             "(another collection), ENTITY/PROJECT/NAME:ALIAS (W&B), a run directory runs/RUN_ID, or a "
             "checkpoint directory"),
    checkpoint: Optional[str] = typer.Option(
        None, "--checkpoint", "-c",
        help="checkpoint directory (model.safetensors + checkpoint.json); overrides --artifact"),
    prime: Optional[str] = typer.Option(
        None, "--prime", "-p", help="a whole string to start from, e.g. 'KIRK: Mister'"),
    num: int = typer.Option(1, "--num", "-n", help="lines per --prime (or repeats of the default starting characters)"),
    temperature: float = typer.Option(
        1.0, "--temperature", "-t", help="softmax temperature: below 1 is safer, above 1 wilder; must be > 0"),
    top_k: int = typer.Option(0, "--top-k", help="sample only from the k most likely characters (0 = all; 1 = greedy)"),
    max_len: int = typer.Option(200, "--max-len", help="longest line in characters, prime included"),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N or auto"),
    seed: Optional[int] = typer.Option(None, "--seed", help="make the output reproducible"),
    artifacts_dir: str = typer.Option(
        "artifacts", "--artifacts-dir", help="local artifact store to resolve --artifact in"),
    artifact_name: str = typer.Option(
        "charlstm", "--artifact-name", help="artifact collection for bare aliases like best-test-loss"),
    project: Optional[str] = typer.Option(
        None, "--project",
        help="W&B project to fetch --artifact from when the local store lacks it (needs an API key); "
             "default: $WANDB_PROJECT, else charexp"),
    entity: Optional[str] = typer.Option(
        None, "--entity", help="W&B entity of --project; default: $WANDB_ENTITY, else your own"),
) -> None:
    if temperature <= 0:
        raise CharexpError(f"--temperature must be greater than 0 (got {temperature:g}); "
                           "use --top-k 1 for greedy output")
    if max_len < 1:
        raise CharexpError(f"--max-len must be at least 1 (got {max_len})")
    if top_k < 0 or num < 1:
        raise CharexpError("--top-k must be 0 or more and --num at least 1")

    import torch

    from charexp.model import resolve_device
    from charexp.sample.generate import generate
    from charexp.store.checkpoint import load_checkpoint
    from charexp.store.references import resolve_artifact

    note = None
    if checkpoint:
        path = checkpoint
    else:
        import os

        resolved = resolve_artifact(artifact, artifacts_dir, artifact_name,
                                    project=project or os.environ.get("WANDB_PROJECT") or "charexp",
                                    entity=entity or os.environ.get("WANDB_ENTITY") or None)
        path = resolved.path
        note = resolved.note if resolved.source != "directory" else None
    ckpt = load_checkpoint(path, resolve_device(device))
    primes = choose_primes(chars, prime, num, ckpt.config.sample_chars)
    generator = torch.Generator(device=next(ckpt.model.parameters()).device)
    if seed is not None:
        generator.manual_seed(seed)
    else:
        generator.seed()
    lines = generate(ckpt.model, ckpt.vocab, primes, max_len, temperature, top_k, generator)
    if hint := prime_hint(chars, prime):
        print(hint, file=sys.stderr)
    if note:  # which version answered, from where (local store or W&B), and for best-test-loss which test set
        print(f"# {note}", file=sys.stderr)
    loss = ckpt.meta.get("test_loss")
    if isinstance(loss, float):
        print(f"# {ckpt.path} (run {ckpt.meta.get('run_id')}, epoch {ckpt.meta.get('epoch')}, test/loss {loss:.4f})",
              file=sys.stderr)
    else:
        print(f"# {ckpt.path}", file=sys.stderr)
    for line in lines:
        print(line)


def cli() -> None:
    run_cli(lambda: run_typer_app(app, prog_name="sample.py"))
