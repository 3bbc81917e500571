#!/usr/bin/env bash
# The zoo's fp32 splits on one GPU, several at a time, for a machine lent for a limited time:
#
#     bash benchmarks/zoo_gpu.sh [SECONDS] [JOBS] [RUNS...]
#
# keeps JOBS splits (default 14) of RUNS (default: the table rows, then the set_official findings and tier 2)
# training on the GPU with `benchmarks/zoo.py start --device cuda`, starts no split after the point where the
# fastest one would no longer finish, stops every split at SECONDS (default 500) and packs what finished, with the
# logs, into $OUT/gpu_runs.tgz (or ./gpu_runs.tgz). Unpack that in the repository root where the zoo's runs live and
# run `python benchmarks/zoo.py collect`: each split's result says the GPU it trained on. Needs the feature file
# (`runs/zoo/features/`) beside the tree: the GPU machine has no EMODB.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
PY=${PYTHON:-python3}
STOP=${1:-500}; JOBS=${2:-14}; shift $(( $# < 2 ? $# : 2 ))
RUNS=${*:-table. finding.set_official. repeat. loso. finding.at_deltatim_v2.standard}
$PY -c "import torch, timm, einops, tim_zoo; print('torch', torch.__version__, 'timm', timm.__version__, \
torch.cuda.get_device_name())" || exit 3
last=$((STOP * 4 / 5)); first=
while [ $SECONDS -lt "$STOP" ]; do
  [ $SECONDS -lt $last ] && $PY benchmarks/zoo.py start --device cuda --jobs "$JOBS" --runs $RUNS 2>&1 | tail -2
  done_now=$(find runs/zoo -name result.json | wc -l)
  if [ -z "$first" ] && [ "$done_now" -gt 0 ]; then   # the fastest split's time: none starts that close to STOP
    first=$SECONDS; last=$((STOP - 3 * first / 2)); echo "first split done at ${first}s: starting none after ${last}s"
  fi
  [ $((SECONDS % 60)) -lt 10 ] && echo "t=${SECONDS}s finished=$done_now" && \
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
  [ $SECONDS -ge $last ] && ! pgrep -f tim_zoo.train >/dev/null && break
  sleep 10
done
pkill -f tim_zoo.train; sleep 2
# the finished splits' folders without their checkpoints (a split stopped on the way is not packed: unpacked over a
# split in progress on the CPU it would break its resume); every log apart, to read
finished=$(find runs/zoo -name result.json | sed -E 's#^(runs/zoo/[^/]+/[^/]+)/.*#\1#' | sort -u)
echo "finished splits: $(echo "$finished" | grep -c .)"
tar czf "${OUT:-.}/gpu_runs.tgz" $(for d in $finished; do find "$d" -name result.json; \
  find "$d" -maxdepth 1 \( -name config.json -o -name machine.txt -o -name train.log \); done)
tar czf "${OUT:-.}/gpu_logs.tgz" $(find runs/zoo -name '*.out')
