#!/usr/bin/env bash
# GPU smoke check: every demo experiment (every method's) a few batches on one GPU (bf16 search, 16-bit AMP training),
# a one-GPU DDP run of training and of a search, then the search-cost (with its top kernels), CenterNet latency
# and training throughput (Lightning vs a plain loop) benchmarks on the GPU.
#
#   bash benchmarks/gpu_smoke.sh [RESULTS_DIR]     (default: ./gpu_smoke)
#
# Writes RESULTS_DIR/smoke.json ({run: {rc, seconds, metrics}}), RESULTS_DIR/smoke.log (the tail of each
# failed run), and one JSON per benchmark. Smoke runs go four at a time (they are small); the benchmarks
# run alone afterwards so that nothing else shares the GPU while they are timed.
set -u
cd "$(dirname "$0")/.."
RESULTS=$(realpath -m "${1:-gpu_smoke}")
WORK=$(mktemp -d)
mkdir -p "$RESULTS"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HYDRA_FULL_ERROR=1

QUIET="logger=csv ~callbacks.progress_bar ~callbacks.model_summary paths.data_dir=$WORK/data"
LOOPS="trainer.max_epochs=2 trainer.limit_train_batches=4 trainer.limit_val_batches=2 trainer.limit_test_batches=2"
SEARCH="trainer=gpu trainer.precision=bf16-mixed model.arch_step.warmup_epochs=0 $LOOPS"

# name|overrides (each run gets its own folder)
RUNS=(
  "darts_first_order|experiment=darts_digits $SEARCH"
  "darts_second_order|experiment=darts_digits model.arch_step.gradient=second_order $SEARCH"
  "amended_fp32|experiment=amended_darts_digits $SEARCH trainer.precision=32"
  "pcdarts|experiment=pcdarts_digits $SEARCH"
  "pdarts_search_and_train|experiment=pdarts_digits_search_and_train trainer=gpu trainer.precision=bf16-mixed $LOOPS"
  "nas_train_amp16|experiment=nas_train_digits trainer=gpu $LOOPS"
  "centernet_amp16|experiment=centernet_shapes trainer=gpu data.num_train=64 data.num_val=8 trainer.max_steps=8 trainer.val_check_interval=4"
  "ddp1_nas_train|experiment=nas_train_digits trainer=ddp trainer.devices=1 $LOOPS"
  "ddp1_amended_search|experiment=darts_digits trainer=ddp trainer.devices=1 model.arch_step.gradient=amended $SEARCH"
  "darts_compile_cudagraphs|experiment=darts_digits model.compile=cudagraphs $SEARCH"
  "pcdarts_compile_cudagraphs|experiment=pcdarts_digits model.compile=cudagraphs $SEARCH"
  "classify_digits_bf16|experiment=classify_digits trainer=gpu trainer.precision=bf16-mixed $LOOPS"
  "augrefine_digits|experiment=augrefine_digits trainer=gpu trainer.precision=bf16-mixed $LOOPS"
  "wrn28_10_summary|experiment=classify_cifar10 model/backbone=wrn28_10 mode=summary"
  "pfs_digits|experiment=pfs_digits trainer=gpu $LOOPS"
  "pfs_baseline_digits|experiment=pfs_baseline_digits trainer=gpu $LOOPS"
  "logit_defense_digits|experiment=logit_defense_digits trainer=gpu trainer.precision=32"
  "mcnl_demo_gpu|experiment=mcnl_demo trainer=gpu trainer.max_epochs=2 trainer.check_val_every_n_epoch=1"
  "triplet_demo_gpu|experiment=triplet_demo trainer=gpu trainer.max_epochs=2"
  "ddp1_mcnl_demo|experiment=mcnl_demo trainer=ddp trainer.devices=1 trainer.max_epochs=2"
  "sake_demo_amp16|experiment=sake_demo trainer=gpu $LOOPS"
  "thickened2d_demo_amp16|experiment=thickened2d_demo trainer=gpu $LOOPS"
  "plain2d_demo_amp16|experiment=plain2d_demo trainer=gpu $LOOPS"
  "unet3d_demo_amp16|experiment=unet3d_demo trainer=gpu $LOOPS"
  "dynunet3d_demo_amp16|experiment=dynunet3d_demo trainer=gpu $LOOPS"
)

smoke() {  # smoke NAME OVERRIDES...
  local name=$1; shift
  local started=$SECONDS port=$((29500 + RANDOM % 1000))
  MASTER_PORT=$port python3 run.py "$@" $QUIET hydra.run.dir="$WORK/runs/$name" >"$WORK/$name.log" 2>&1
  local rc=$?
  echo "{\"name\": \"$name\", \"rc\": $rc, \"seconds\": $((SECONDS - started))}" >"$WORK/$name.status"
}
export -f smoke
export QUIET WORK

printf '%s\n' "${RUNS[@]}" | while IFS='|' read -r name overrides; do
  # shellcheck disable=SC2086
  echo "$name $overrides"
done | xargs -P 4 -L 1 bash -c 'smoke "$@"' _

python3 - "$WORK" "$RESULTS" <<'EOF'
import json, sys
from pathlib import Path
work, results = Path(sys.argv[1]), Path(sys.argv[2])
summary, log = {}, []
for status in sorted(work.glob("*.status")):
    entry = json.loads(status.read_text())
    found = sorted((work / "runs" / entry["name"]).rglob("result.json"))
    metrics = {}
    for path in found:
        data = json.loads(path.read_text())
        metrics.update({k: round(v, 4) if isinstance(v, float) else v for k, v in data.get("metrics", {}).items()})
    entry["metrics"] = metrics
    entry["result_files"] = len(found)
    summary[entry.pop("name")] = entry
    text = (work / f"{status.stem}.log").read_text(errors="replace")
    if entry["rc"] != 0 or not found:
        log.append(f"===== {status.stem} (rc {entry['rc']})\n{text[-6000:]}")
# Captured search (model.compile) against eager with the same settings (same seed, bf16): genotype and alpha.
import torch
def search_outputs(name):
    run = work / "runs" / name
    genotype = next(run.rglob("genotype.json"), None)
    checkpoint = next(run.rglob("last.ckpt"), None)
    if genotype is None or checkpoint is None:
        return None, None
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    return json.loads(genotype.read_text()), {k: v.float() for k, v in state.items() if ".alpha_" in k or ".beta_" in k}
capture = {}
for eager_name, captured_name in (("darts_first_order", "darts_compile_cudagraphs"), ("pcdarts", "pcdarts_compile_cudagraphs")):
    (eager_genotype, eager_arch), (captured_genotype, captured_arch) = search_outputs(eager_name), search_outputs(captured_name)
    if eager_arch is None or captured_arch is None:
        capture[captured_name] = "missing outputs"
        continue
    capture[captured_name] = {
        "same_genotype": {k: v for k, v in eager_genotype.items() if k != "metadata"}
                         == {k: v for k, v in captured_genotype.items() if k != "metadata"},
        "arch_max_abs_diff": max(float((eager_arch[k] - captured_arch[k]).abs().max()) for k in eager_arch),
        "arch_max_abs": max(float(v.abs().max()) for v in eager_arch.values()),
    }
summary["capture_vs_eager"] = capture
(results / "smoke.json").write_text(json.dumps(summary, indent=2))
(results / "smoke.log").write_text("\n".join(log) or "all smoke runs passed\n")
print(json.dumps({k: {"rc": v["rc"], "seconds": v["seconds"], "results": v["result_files"]} if "rc" in v else v
                  for k, v in summary.items()}, indent=1))
EOF

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$RESULTS/gpu.txt"
python3 benchmarks/search_iteration.py --device cuda --batch-size 64 --repeats 10 --warmup 3 \
  >"$RESULTS/search_iteration_b64.json" 2>"$RESULTS/bench.err"
python3 benchmarks/search_iteration.py --device cuda --batch-size 256 --repeats 5 --warmup 2 --parts pcdarts \
  >"$RESULTS/search_iteration_b256_pcdarts.json" 2>>"$RESULTS/bench.err"
python3 benchmarks/search_kernels.py --device cuda --batch-size 256 \
  >"$RESULTS/search_kernels_b256.json" 2>>"$RESULTS/bench.err"
python3 benchmarks/centernet_latency.py --device cuda --repeats 5 --warmup 2 \
  >"$RESULTS/centernet_latency.json" 2>>"$RESULTS/bench.err"
python3 benchmarks/train_throughput.py --device cuda >"$RESULTS/train_throughput.json" 2>>"$RESULTS/bench.err"
python3 benchmarks/volume_inference.py --device cuda >"$RESULTS/volume_inference.json" 2>>"$RESULTS/bench.err"
python3 benchmarks/logit_dataset_throughput.py --device cuda --backbone resnet50 --image-size 224 --num-classes 1000 \
  --batch-size 64 >"$RESULTS/logit_dataset_throughput.json" 2>>"$RESULTS/bench.err"
cat "$RESULTS"/search_iteration_b64.json "$RESULTS"/search_iteration_b256_pcdarts.json
tail -5 "$RESULTS/bench.err"
rm -rf "$WORK"
