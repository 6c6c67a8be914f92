#!/usr/bin/env bash
# Every CUDA check in one go, for a machine with an NVIDIA GPU (run from the repo root), most important
# first so that a short device budget still gets the headline figures:
#   1. throughput at batch 256, fp32, with its breakdown of the epoch-end pauses  (~1-2 min)
#   2. sampling speed, LSTMCell steps against nn.LSTM's sequence path              (<1 min)
#   3. throughput at batch 256 under bf16 autocast                                 (~1-2 min)
#   4. the test suite with device=cuda                                             (<=200 s)
#   5. a short quality run, fp32 against bf16: the learning signal must match      (~2x1.5 min)
# Results are printed and copied to $OUT (default: gpu-check/).
set -uo pipefail
OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PY:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())" | tee -a "$OUT/gpu.txt"

# startrek.yaml caps batches at 2304 characters for CPU caches; a GPU wants whole batches of 256
throughput() {
  echo "== throughput $*" | tee -a "$OUT/throughput.txt"
  timeout 150 $PY benchmarks/throughput.py --device cuda --batch-size 256 --batch-tokens 0 --windows 5 "$@" 2>&1 | tail -7 | tee -a "$OUT/throughput.txt"
}
throughput
echo "== sampling" | tee -a "$OUT/sampling.txt"
timeout 60 $PY benchmarks/sampling.py --device cuda 2>&1 | tail -4 | tee -a "$OUT/sampling.txt"
throughput --amp

XDIST=$($PY -c "import xdist" 2>/dev/null && echo "-n 8" || echo "")
CHAREXP_TEST_DEVICE=cuda CHAREXP_TEST_CUDA_VISIBLE_DEVICES=0 timeout ${TEST_TIMEOUT:-200} \
  $PY -m pytest -q -p no:cacheprovider $XDIST tests --ignore=tests/faults --ignore=tests/test_bad_input.py 2>&1 | tail -25 | tee "$OUT/tests.txt"

for amp in False True; do
  echo "== quality ${QUALITY_MINUTES:-1} min, batch 256, amp=$amp" | tee -a "$OUT/quality.txt"
  timeout 150 $PY benchmarks/quality.py --minutes ${QUALITY_MINUTES:-1} --device cuda batch_size=256 batch_tokens=0 lr=0.004 amp=$amp 2>&1 | tail -6 | tee -a "$OUT/quality.txt"
done
