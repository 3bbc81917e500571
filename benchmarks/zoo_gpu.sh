#!/usr/bin/env bash
# The zoo's fp32 splits on one GPU, several at a time, for a machine lent for a limited time:
#
#     bash benchmarks/zoo_gpu.sh [SECONDS] [JOBS] [RUNS...]
#
# keeps JOBS splits (default 14) of RUNS (default: the table rows, then tier 2, then the findings) training on the GPU
# with `benchmarks/zoo.py start --device cuda`, starts no
# split after the point where the fastest one would no longer finish, stops every split at SECONDS (default 500) and
# packs the finished splits into $OUT/gpu_runs.tgz (or ./gpu_runs.tgz; again after each one finishes, so that a
# command cut at the device's limit still returns them) and every split's logs, finished or not, into gpu_logs.tgz
# (to read; not to unpack). Where the zoo's runs live: `python benchmarks/zoo.py unpack gpu_runs.tgz` (it stops a
# split training there that the archive holds finished), then `python benchmarks/zoo.py collect`; each split's result
# names the GPU it trained on. Needs the feature file beside the tree (`runs/zoo/features/`, carried): the GPU
# machine has no EMODB. A machine lent again while warm keeps its run folders: a second call goes on with the next
# splits and packs again every split finished there since the first call (2026-12-04: three calls in a row).
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
PY=${PYTHON:-python3}
STOP=${1:-500}; JOBS=${2:-14}; shift $(( $# < 2 ? $# : 2 ))
RUNS=${*:-table. repeat. loso. finding.}
case "$STOP$JOBS" in *[!0-9]*) echo "SECONDS and JOBS are whole numbers, got '$STOP' '$JOBS'"; exit 2;; esac
[ -f runs/zoo/features/emodb_o1_87.npz ] || { echo "runs/zoo/features/emodb_o1_87.npz is missing: carry it"; exit 2; }
$PY -c "import torch, timm, einops, tim_zoo; print('torch', torch.__version__, 'timm', timm.__version__, \
torch.cuda.get_device_name())" || exit 3
$PY benchmarks/zoo.py start --device cuda --jobs 0 --runs $RUNS || exit 2     # the names, before any device time
# the splits finished on this machine: since its first call (a machine lent again while warm keeps its run folders,
# and a split left running by a call cut at its limit finishes between calls), or since this call (`$call`, which
# times the fastest split)
mkdir -p runs/zoo; [ -f runs/zoo/.gpu_mark ] || touch runs/zoo/.gpu_mark
finished() { find runs/zoo -name result.json -newer "${1:-runs/zoo/.gpu_mark}" \
  | sed -E 's#^(runs/zoo/[^/]+/[^/]+)/.*#\1#' | sort -u; }
# the finished splits' folders without their checkpoints (a split stopped on the way is not packed); packed again
# whenever one more finishes, so that a command killed at the device's limit still returns them; every split's logs
# (tar says 1 when a running split writes its log as it is read: the archive is whole all the same)
pack() {
  files=$(for d in $(finished); do find "$d" -name result.json; \
    find "$d" -maxdepth 1 \( -name config.json -o -name machine.txt -o -name train.log \); done)
  tar czf "${OUT:-.}/gpu_runs.tgz.part" $files -T /dev/null && mv "${OUT:-.}/gpu_runs.tgz.part" "${OUT:-.}/gpu_runs.tgz"
  tar czf "${OUT:-.}/gpu_logs.tgz.part" $(find runs/zoo -name '*.out' -o -name train.log) -T /dev/null
  mv "${OUT:-.}/gpu_logs.tgz.part" "${OUT:-.}/gpu_logs.tgz"
}
call=$(mktemp); last=$((STOP * 4 / 5)); first=; packed=-1
while [ $SECONDS -lt "$STOP" ]; do
  jobs=$([ $SECONDS -lt $last ] && echo "$JOBS" || echo 0)        # 0: start nothing, say how many run
  said=$($PY benchmarks/zoo.py start --device cuda --jobs "$jobs" --runs $RUNS 2>&1)
  echo "$said" | grep -v '^started: nothing'
  done_now=$(finished | grep -c .)
  [ "$done_now" -gt "$packed" ] && { pack; packed=$done_now; }
  if [ -z "$first" ] && [ "$(finished "$call" | grep -c .)" -gt 0 ]; then   # the fastest split's time this call:
    # none starts that close to STOP
    first=$SECONDS; last=$((STOP - 3 * first / 2)); echo "first split done at ${first}s: starting none after ${last}s"
  fi
  [ $((SECONDS % 60)) -lt 10 ] && echo "t=${SECONDS}s finished=$done_now" && \
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
  [ $SECONDS -ge $last ] && echo "$said" | grep -q 'running: 0$' && break
  sleep 10
done
$PY benchmarks/zoo.py stop
pack; echo "finished splits: $(finished "$call" | grep -c .) in this call, $(finished | grep -c .) packed"
