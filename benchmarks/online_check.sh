#!/usr/bin/env bash
# What only a real W&B server can check (issue 13), for a person with a W&B account (run from the repo root,
# after `wandb login`; about 3-5 minutes on a laptop CPU). Everything goes into a scratch project that you
# can delete afterwards (PROJECT=..., ENTITY=... to choose; default: charexp-online-check-<time>, your entity).
#   1. two short runs with different test losses, from two separate artifacts/ dirs (two "machines"),
#      the better one first: best-test-loss on W&B must stay on the better one
#   2. W&B's best-test-loss is the lowest test/loss of that test set among the collection's versions
#   3. sample.py --artifact best-test-loss from a third, empty directory downloads it from W&B and samples
#   4. a tiny offline sweep (charexp sweep, WANDB_MODE=offline) uploaded with `charexp sweep --upload`:
#      every run appears in the project, in group sweep-<id>, with the swept values in its config
# Prints PASS/FAIL per step and exits 1 if any failed. Logs go to $OUT (default: online-check/).
set -uo pipefail
REPO=$(pwd)
PY=${PY:-python3}
OUT=${OUT:-online-check}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export PYTHONUNBUFFERED=1 WANDB_SILENT=true
unset WANDB_MODE WANDB_SWEEP_ID WANDB_RUN_ID WANDB_SWEEP_PARAM_PATH WANDB_PROJECT WANDB_RUN_GROUP
if ! $PY -c "from charexp.wandb_env import has_api_key; raise SystemExit(0 if has_api_key() else 1)"; then
  echo "error: no W&B API key is configured; run 'wandb login' (or set WANDB_API_KEY) first"; exit 2
fi
PROJECT=${PROJECT:-charexp-online-check-$(date +%Y%m%d-%H%M%S)}
ENTITY=${ENTITY:-$($PY -c "import wandb; print(wandb.Api().default_entity)")}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/charexp-online.XXXXXX")
echo "project $ENTITY/$PROJECT; working in $WORK; logs in $OUT"
FAILED=0
report() { if [ "$1" = 0 ]; then echo "PASS  $2"; else echo "FAIL  $2 (see $OUT)"; FAILED=1; fi; }

# a small corpus in the transcript CSV format, the same bytes for every "machine" (so one test set)
$PY - "$WORK/data.csv" <<'EOF'
import csv, random, sys
rng = random.Random(0)
speakers = ["KIRK", "SPOCK", "MCCOY", "SCOTT", "UHURA"]
phrases = ["Captain, the ship is ready.", "Fascinating.", "He's dead, Jim.", "Beam us up.", "Shields up, red alert.",
           "Hailing frequencies open, sir.", "Logical, but not likely.", "Set a course, warp factor two."]
with open(sys.argv[1], "w", newline="") as f:
    w = csv.writer(f)
    for _ in range(12):
        w.writerow(["NEXTEPISODE"])
        for _ in range(10):
            w.writerow([f"{rng.choice(speakers)}: {rng.choice(phrases)}" for _ in range(6)])
EOF
cat > "$WORK/tiny.yaml" <<EOF
data: $WORK/data.csv
layers: 1
hidden: 32
embed: 16
batch_size: 8
epochs: 1
steps_per_epoch: 40
sample_every: 0
sample_chars: KS
sample_max_len: 40
device: cpu
wandb_project: $PROJECT
wandb_entity: $ENTITY
wandb_mode: online
EOF

# 1. two machines: a good run (lr 0.01) first, then a bad one (lr 1e-5) from its own artifacts/
for m in a b; do mkdir -p "$WORK/$m"; done
(cd "$WORK/a" && $PY "$REPO/train.py" --config "$WORK/tiny.yaml" --lr=0.01) > "$OUT/run-a.log" 2>&1; A=$?
(cd "$WORK/b" && $PY "$REPO/train.py" --config "$WORK/tiny.yaml" --lr=0.00001) > "$OUT/run-b.log" 2>&1; B=$?
report $(( A || B )) "two online runs from two artifacts/ directories finished"
# the local store of machine b alone would have given its own (worse) version best-test-loss
$PY - "$ENTITY/$PROJECT/charlstm" "$WORK" > "$OUT/best.log" 2>&1 <<'EOF'
import json, sys
from pathlib import Path
import wandb
collection, work = sys.argv[1], Path(sys.argv[2])
api = wandb.Api()
best = api.artifact(f"{collection}:best-test-loss", type="model")
local = {m: json.loads((work / m / "artifacts" / "charlstm" / "index.json").read_text())["versions"][0]["test_loss"] for m in "ab"}
print("local losses", local, "W&B best", best.version, best.metadata.get("test_loss"), best.aliases)
assert abs(best.metadata["test_loss"] - min(local.values())) < 1e-9, "best-test-loss on W&B is not the better run's version"
ids = {best.metadata["test_set"]["id"]}
versions = [a for a in api.artifacts("model", collection) if a.metadata.get("test_set", {}).get("id") in ids]
assert best.metadata["test_loss"] == min(a.metadata["test_loss"] for a in versions), "not the minimum of its test set"
alias = "best-test-loss-" + best.metadata["test_set"]["id"][:8]
assert alias in best.aliases, f"{alias} is not on the best version"
print("ok", best.version)
EOF
report $? "best-test-loss on W&B is the better run's version (step 1), the minimum of its test set (step 2)"

# 3. a third machine with an empty artifacts/: sample.py fetches best-test-loss from W&B
mkdir -p "$WORK/c"
(cd "$WORK/c" && $PY "$REPO/sample.py" --artifact best-test-loss --project "$PROJECT" --entity "$ENTITY" KS --seed 1 --max-len 40) > "$OUT/sample.log" 2>&1
S=$?
BEST=$(sed -n 's/^ok //p' "$OUT/best.log")
[ $S = 0 ] && grep -q "from W&B" "$OUT/sample.log" && [ -n "$BEST" ] && [ -d "$WORK/c/artifacts/charlstm:$BEST" ] && [ "$(grep -vc '^#' "$OUT/sample.log")" -ge 2 ]
report $? "sample.py --artifact best-test-loss from an empty directory downloaded charlstm:$BEST from W&B and sampled"

# 4. an offline sweep, uploaded afterwards with the documented command
mkdir -p "$WORK/d"
cat > "$WORK/d/sweep.yaml" <<EOF
program: $REPO/train.py
method: grid
metric: {name: test/loss, goal: minimize}
parameters:
  lr: {values: [0.01, 0.003]}
command: ["\${env}", "\${interpreter}", "\${program}", "--config", "$WORK/tiny.yaml", "--wandb_mode=offline", "--artifact_name=charlstm-sweep", "\${args}"]
EOF
(cd "$WORK/d" && WANDB_MODE=offline charexp sweep sweep.yaml --project "$PROJECT") > "$OUT/sweep.log" 2>&1
SWEEP_DIR=$(ls -d "$WORK"/d/sweep-runs/*/ 2>/dev/null | head -1)
(cd "$WORK/d" && charexp sweep --upload "$SWEEP_DIR" --entity "$ENTITY") > "$OUT/upload.log" 2>&1
U=$?
$PY - "$ENTITY/$PROJECT" "$SWEEP_DIR" > "$OUT/sweep-check.log" 2>&1 <<'EOF'
import json, sys, time
from pathlib import Path
import wandb
path, sweep_dir = sys.argv[1], Path(sys.argv[2])
state = json.loads((sweep_dir / "state.json").read_text())
want = {r["run_id"]: r["params"]["lr"] for r in state["runs"]}
for _ in range(12):  # the server indexes uploaded runs within seconds
    runs = {r.id: r for r in wandb.Api().runs(path, filters={"group": f"sweep-{state['sweep_id']}"})}
    if set(runs) >= set(want):
        break
    time.sleep(5)
print("uploaded", sorted(runs), "wanted", want)
assert set(runs) >= set(want), "not every run of the sweep is in the project's group"
for run_id, lr in want.items():
    assert runs[run_id].config.get("lr") == lr, (run_id, runs[run_id].config.get("lr"), lr)
    assert f"sweep-{state['sweep_id']}" in runs[run_id].tags
print("ok")
EOF
report $(( U || $? )) "offline sweep uploaded with 'charexp sweep --upload': every run in group sweep-<id>, swept lr in its config"

echo "scratch project: $ENTITY/$PROJECT (delete it in the W&B UI when done); files: $WORK"
exit $FAILED
