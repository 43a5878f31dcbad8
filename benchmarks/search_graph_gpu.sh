#!/usr/bin/env bash
# The host overhead of the search on a GPU: a first-order DARTS / PC-DARTS search iteration eager vs with its
# forward captured (model.compile=cudagraphs: dynamo + AOTAutograd graphs replayed as CUDA graphs), at batch 64 and 256, fp32 and
# bf16 autocast (channels-last, cuDNN autotuner on: what trainer=gpu runs), plus the summed kernel time of the
# same iterations (benchmarks/search_kernels.py, eager). Goal: captured wall time <= 1.25x the kernel total.
#
#   bash benchmarks/search_graph_gpu.sh [RESULTS_DIR]   (default: benchmarks/results/<date>_<device>)
#   INDUCTOR=1 bash benchmarks/search_graph_gpu.sh ...  (also model.compile=reduce-overhead at batch 256: long
#                                                        Inductor compilation, run it only with time to spare)
#
# One JSON per measurement (written as soon as it is done, so a run cut short keeps what it measured) and
# summary.json (per batch/precision/network: eager and captured seconds, kernel total, ratios). Each command
# has its own time limit; the whole script is meant to take under ~8 minutes on an H200.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
DEVICE=$(python -c "import torch; print(torch.cuda.get_device_name().split()[-1].lower() if torch.cuda.is_available() else 'cpu')")
if [ "$DEVICE" = cpu ]; then echo "search_graph_gpu.sh: no CUDA device (CUDA graphs need one)" >&2; exit 2; fi
RESULTS=$(realpath -m "${1:-benchmarks/results/$(date -u +%F)_$DEVICE}")
mkdir -p "$RESULTS"
COMMON="--cudnn-benchmark --repeats 5 --warmup 3 --parts pcdarts"  # pcdarts part: DARTS and PC-DARTS, first order
AUTOCAST=(none bf16)

run() {  # name, time limit, command...
  local name=$1 limit=$2; shift 2
  local started=$SECONDS
  timeout "$limit" "$@" >"$RESULTS/$name.json" 2>"$RESULTS/$name.log"
  echo "$name rc=$? seconds=$((SECONDS - started))" | tee -a "$RESULTS/runs.txt"
}

for batch in 256 64; do
  for autocast in "${AUTOCAST[@]}"; do
    for compile in false cudagraphs; do
      run "iteration_b${batch}_${autocast}_${compile}" 150 \
        python benchmarks/search_iteration.py --batch-size "$batch" --autocast "$autocast" --compile "$compile" $COMMON
    done
  done
  # kernel totals of the same settings (channels-last fp32 and bf16, cuDNN autotuner on), eager
  run "kernels_b${batch}" 180 python benchmarks/search_kernels.py --batch-size "$batch" --repeats 3 --top 12 \
    --settings cl_fp32_cudnn,cl_bf16_cudnn --profile-all --output "$RESULTS/kernels_b${batch}.json"
done
if [ "${INDUCTOR:-0}" = 1 ]; then
  run "iteration_b256_bf16_reduce-overhead" 400 \
    python benchmarks/search_iteration.py --batch-size 256 --autocast bf16 --compile reduce-overhead $COMMON
fi

python - "$RESULTS" <<'EOF'
import json, sys
from pathlib import Path

results = Path(sys.argv[1])
def load(name):
    try:
        return json.loads((results / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None
summary = {"benchmark": "search_graph_gpu", "goal": "captured seconds <= 1.25 x kernel total", "rows": {}}
for batch in (256, 64):
    kernels = load(f"kernels_b{batch}") or {}
    for autocast, setting in (("none", "cl_fp32_cudnn"), ("bf16", "cl_bf16_cudnn")):
        for network, key in (("darts", "darts_first_order"), ("pcdarts_k4", "pcdarts_k4_first_order")):
            row = {}
            for compile in ("false", "cudagraphs", "reduce-overhead"):
                report = load(f"iteration_b{batch}_{autocast}_{compile}")
                if report and "pcdarts_vs_darts" in report:
                    row[f"seconds_{compile}"] = report["pcdarts_vs_darts"][key]["seconds_per_iteration"]
            kernel_ms = kernels.get(f"{setting}/{network}", {}).get("kernel_ms_total")
            if kernel_ms:
                row["kernel_seconds"] = kernel_ms / 1e3
                for compile in ("false", "cudagraphs", "reduce-overhead"):
                    if f"seconds_{compile}" in row:
                        row[f"ratio_{compile}_to_kernels"] = round(row[f"seconds_{compile}"] / row["kernel_seconds"], 3)
            summary["rows"][f"b{batch}/{autocast}/{network}"] = row
(results / "summary.json").write_text(json.dumps(summary, indent=1))
print(json.dumps(summary, indent=1))
EOF
