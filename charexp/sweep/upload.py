"""`charexp sweep --upload SWEEP_DIR`: upload an offline sweep's runs to W&B with `wandb sync`.

The runs of `charexp sweep` record no sweep id (a locally made one would make `wandb sync` fail with
"sweep ... not found (404)", wandb/wandb#8115). They carry the sweep as tags (`charexp-sweep`,
`sweep-<id>`) and the swept values in their config (charexp's train.py also sets a run group per
replicate group: runs that differ only in seed), so
plain `wandb sync` uploads them; this command picks exactly this sweep's run directories (every
segment of a resumed run), checks them, and runs `wandb sync` on them. Already-synced runs are
skipped by wandb itself, so running it twice is harmless.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from charexp.errors import CharexpError

_WANDB_SCRIPT = Path(sys.executable).with_name("wandb")
WANDB_CLI = [str(_WANDB_SCRIPT)] if _WANDB_SCRIPT.exists() else [sys.executable, "-m", "wandb"]


@dataclass
class UploadPlan:
    sweep_id: str
    project: str
    entity: str | None
    tag: str  # sweep-<id>
    run_dirs: list[Path] = field(default_factory=list)  # the W&B run directories to sync, oldest segment first
    runs: list[str] = field(default_factory=list)  # run ids that will be uploaded
    skipped: list[str] = field(default_factory=list)  # one line each: a run left out, and why

    def argv(self, dry_run: bool = False, project: str | None = None, entity: str | None = None) -> list[str]:
        args = [*WANDB_CLI, "sync"]
        if project:
            args += ["--project", project]
        if entity:
            args += ["--entity", entity]
        if dry_run:
            args.append("--dry-run")
        return args + [str(d) for d in self.run_dirs]


def plan_upload(sweep_dir: Path) -> UploadPlan:
    """Which W&B run directories of the sweep in `sweep_dir` to sync, read from state.json and the runs' own files."""
    from charexp.sweep.launch import sweep_tag, wandb_files_dir
    from charexp.sweep.state import SWEEP_YAML, load_state
    from charexp.tracking.wandb_files import find_run_files, read_run

    state = load_state(sweep_dir)
    entity = None
    try:
        import yaml

        loaded = yaml.safe_load((sweep_dir / SWEEP_YAML).read_text(encoding="utf-8"))
        entity = loaded.get("entity") if isinstance(loaded, dict) else None
    except (OSError, ValueError):
        pass
    root = wandb_files_dir(Path(state.wandb_dir))
    plan = UploadPlan(state.sweep_id, state.project, entity, sweep_tag(state.sweep_id))
    for rec in state.runs:
        files = find_run_files(root, rec.run_id)
        if rec.state in ("running", "pending"):
            plan.skipped.append(f"{rec.run_id}: still {rec.state}; upload it once it has ended")
            continue
        if not files:
            plan.skipped.append(f"{rec.run_id}: no W&B files under {root} (it never started)")
            continue
        records = read_run(files[0])
        if records.sweep_id:
            plan.skipped.append(f"{rec.run_id}: recorded with the local sweep id {records.sweep_id}, "
                                "which W&B would refuse (made by an older charexp); sync it into a new run with: "
                                f"wandb sync --id NEW_ID {files[0].parent}")
            continue
        plan.runs.append(rec.run_id)
        plan.run_dirs += [f.parent for f in files]
    return plan


def upload(sweep_dir: Path, *, dry_run: bool = False, project: str | None = None, entity: str | None = None) -> int:
    """Print the plan, run `wandb sync` on it; returns wandb's exit code."""
    from charexp.wandb_env import has_api_key

    plan = plan_upload(sweep_dir)
    into = f" (entity {entity or plan.entity})" if entity or plan.entity else ""
    print(f"sweep {plan.sweep_id}: {len(plan.runs)} run(s) to upload to W&B project {project or plan.project}"
          f"{into}, tagged charexp-sweep and {plan.tag}")
    for line in plan.skipped:
        print(f"  skipped {line}")
    if not plan.runs:
        raise CharexpError(f"sweep {plan.sweep_id} in {sweep_dir} has no ended run with W&B files to upload; "
                           f"run it first (charexp sweep --resume {sweep_dir})")
    if not dry_run and not has_api_key():
        raise CharexpError(f"uploading sweep {plan.sweep_id} needs a W&B account and no API key is configured; "
                           f"run 'wandb login' (or set WANDB_API_KEY), then charexp sweep --upload {sweep_dir}")
    argv = plan.argv(dry_run, project, entity or plan.entity)
    dirs = len(plan.run_dirs)
    print(f"  {' '.join(argv[:len(argv) - dirs])} <{dirs} run director{'y' if dirs == 1 else 'ies'}>", flush=True)
    code = subprocess.run(argv).returncode
    if code == 0 and not dry_run:
        print(f"uploaded: in the W&B project, filter by the tag {plan.tag} for this sweep; "
              "runs that differ only in seed share a group")
    return code
