#!/usr/bin/env bash
# One prepared device check: the CUDA tests (they must run, not skip), then ivif-bench for every
# backend variant, single pairs and batches, at 640x512 and 1280x1024, with peak GPU memory.
# Everything lands in $OUT (default ./gpu_out): env.txt, pytest.log, pytest.xml, bench.json,
# bench.md, summary.md. With --device cpu it runs anywhere (small sizes and runs), which is how
# its plumbing is tested (test/cli/test_gpu_check.py).
#
# Usage: scripts/gpu_check.sh [--device cuda|cpu] [--out DIR] [--data IR VIS] [--model WEIGHTS]
#          [--sizes "640x512 1280x1024"] [--batch B] [--runs N] [--warmup N]
#          [--backends "VARIANT ..."] [--tests "PYTEST PATHS"] [--wheels DIR] [--python PY]
# The data and weights paths are explicit because ../shared does not travel with the tree.
set -u -o pipefail

device=cuda
out="${OUT:-./gpu_out}"
data_ir="" data_vis="" model="" wheels=""
sizes="640x512 1280x1024"
batch=8 runs=200 warmup=20
backends=""
tests="test/backends test/models/test_features.py test/core/test_primitives.py test/core/test_batched.py"
python="${PYTHON:-python3}"

while [ $# -gt 0 ]; do
  case "$1" in
    --device) device="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --data) data_ir="$2"; data_vis="$3"; shift 3 ;;
    --model) model="$2"; shift 2 ;;
    --sizes) sizes="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --backends) backends="$2"; shift 2 ;;
    --tests) tests="$2"; shift 2 ;;
    --wheels) wheels="$2"; shift 2 ;;
    --python) python="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "gpu_check: unknown argument $1" >&2; exit 2 ;;
  esac
done

repo="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cd "$repo" || exit 2
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if [ -n "$wheels" ]; then  # extra packages carried as wheels (e.g. tensorrt), nothing fetched
  "$python" -m pip install -q --no-index --no-deps --no-compile --target /tmp/ivif_site "$wheels"/*.whl || exit 2
  export PYTHONPATH="/tmp/ivif_site:$PYTHONPATH"
fi
if [ -z "$backends" ]; then
  if [ "$device" = cpu ]; then
    backends="onnxruntime torch"
  else
    backends="torch:fp16=0 torch:fp16=1 torch:fp16=1,channels_last=1 torch:fp16=0,cuda_graphs=1 torch:fp16=1,cuda_graphs=1 tensorrt:fp16=1 tensorrt:fp16=0"
  fi
fi
status=0

# ---- environment
{
  echo "date: $(date -u +%FT%TZ)"
  echo "device: $device"
  "$python" - <<'PY'
import platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda)
print("cuda available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(0), "capability", torch.cuda.get_device_capability(0))
for name in ("onnxruntime", "tensorrt", "cv2"):
    try:
        module = __import__(name)
        print(name, getattr(module, "__version__", "?"))
    except Exception as error:
        print(name, "not importable:", type(error).__name__, error)
PY
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv
} > "$out/env.txt" 2>&1
cat "$out/env.txt"
if [ "$device" != cpu ] && ! "$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_check: --device $device but torch sees no CUDA device" >&2
  exit 3
fi

# ---- tests (CUDA ones must run here: a CUDA skip on the device is a failure)
# shellcheck disable=SC2086
"$python" -m pytest -q -rs -p no:cacheprovider --junitxml="$out/pytest.xml" $tests > "$out/pytest.log" 2>&1
test_rc=$?
tail -n 25 "$out/pytest.log"
[ $test_rc -eq 0 ] || { echo "gpu_check: tests failed (rc $test_rc)"; status=1; }
if [ "$device" != cpu ]; then
  cuda_skips=$(grep -c 'SKIPPED.*CUDA is not available' "$out/pytest.log")
  if [ "$cuda_skips" -gt 0 ]; then
    echo "gpu_check: $cuda_skips CUDA test(s) skipped on a CUDA device"; status=1
  fi
fi

# ---- benchmark: every variant, single pairs and batches of $batch
bench_args=(--device "$device" --sizes $sizes --backends $backends --batch 1 "$batch"
            --runs "$runs" --warmup "$warmup" --out "$out" --quiet)
[ -n "$model" ] && bench_args+=(--model "$model")
[ -n "$data_ir" ] && bench_args+=(--data "$data_ir" "$data_vis")
[ "$device" = cpu ] && bench_args+=(--torch-ops)  # the batched rows need the torch primitives
"$python" -m ivif_ros.cli.bench "${bench_args[@]}" > "$out/bench.log" 2>&1
bench_rc=$?
[ $bench_rc -eq 0 ] || { echo "gpu_check: ivif-bench failed (rc $bench_rc)"; tail -n 20 "$out/bench.log"; status=1; }

# ---- summary (last, so the end of the output is the table)
"$python" - "$out" "$test_rc" "$bench_rc" <<'PY' | tee "$out/summary.md"
import json, sys
from pathlib import Path
out, test_rc, bench_rc = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
print(f"# gpu_check summary\n\ntests rc {test_rc}, bench rc {bench_rc}\n")
try:
    report = json.loads((out / "bench.json").read_text())
except (OSError, ValueError) as error:
    print(f"no bench.json: {error}")
    sys.exit(0)
print(f"GPU: {report['machine'].get('gpu')}\n")
print("| table | size | variant | batch | pairs/s | median ms | peak CUDA MB | note |")
print("|---|---|---|---|---|---|---|---|")
for table in ("pipeline", "detector"):
    for row in report.get(table, []):
        if "error" in row:
            print(f"| {table} | {row['size']} | {row['variant']} | {row.get('batch', 1)} | – | – | – | {row['error'][:80]} |")
            continue
        median = row["stages"]["total"]["median"] if table == "pipeline" else row["ms"]["median"]
        peak = row.get("peak_cuda_mb")
        print(f"| {table} | {row['size']} | {row['variant']} | {row.get('batch', 1)} | {row['pairs_per_s']:.1f} | "
              f"{median:.2f} | {'–' if peak is None else f'{peak:.0f}'} | |")
PY
exit $status
