#!/usr/bin/env bash
# The checks that need a CUDA GPU, in one run (for a lent device machine; CI has no GPU):
#   1. build gsplat's CUDA extension, the CPU rasteriser and cuda/lift_features.cu;
#   2. benchmarks/gsplat_parity.py: CPU backend vs gsplat (figures + PNGs);
#   3. the CUDA tests (parity, lifting kernel vs its CPU reference);
#   4. benchmarks/bench_render.py on gsplat;
#   5. the renderer, Gaussian and semantics tests with CUDA present ("auto" picks gsplat).
# Results go to $OUT (default out/gpu): gpu_check.log, gsplat_parity.json, render_gpu.json,
# pytest_cuda.log, pytest_render.log and parity_guitar_*.png.
#
# Python packages: the machine's python3 with torch.  gsplat is the installed one, else the
# pure-Python gsplat package (sources included; it JIT-compiles) copied to .dev/site/gsplat.
# Real splats: ../shared/data/splats, else .dev/splats (copied beside the repo).
# Usage: OUT=/some/dir benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/gpu}
mkdir -p "$OUT"
PY=${PY:-python3}
export PYTHONUNBUFFERED=1 MAX_JOBS=${MAX_JOBS:-$(nproc)}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if ! $PY -c "import gsplat" 2>/dev/null; then export PYTHONPATH="$PWD/.dev/site:$PYTHONPATH"; fi
if [ ! -e ../shared/data/splats/guitar.3dgs.ply ] && [ -d .dev/splats ]; then
    mkdir -p ../shared/data && cp -r .dev/splats ../shared/data/
fi
LOG=$OUT/gpu_check.log
stage() { echo "=== $(date +%T) $*" | tee -a "$LOG"; }

stage "machine"
{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    $PY -c "import torch, gsplat; print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.get_device_name(), '| gsplat', gsplat.__version__, gsplat.__file__)"
} 2>&1 | tee -a "$LOG"

stage "build extensions (parallel)"
{
    timeout 300 $PY -c "from gsplat.cuda._backend import _C; assert _C is not None, 'gsplat CUDA build failed'; print('gsplat CUDA extension ready')" &
    $PY -c "from ros_gs.render.rasterize_cpu import load_extension as l; l(); print('CPU rasteriser ready')" &
    $PY -c "from ros_gs.semantics.lifting import _cuda_extension as l; l(); print('lifting kernel ready')" &
    wait
} 2>&1 | tail -n 40 | tee -a "$LOG"

stage "gsplat parity"
timeout 150 $PY benchmarks/gsplat_parity.py --out "$OUT/gsplat_parity.json" --png-dir "$OUT" 2>&1 | tee -a "$LOG"

stage "CUDA tests"
timeout 120 $PY -m pytest -q -p no:cacheprovider tests/render/test_render_gsplat_parity.py \
    "tests/semantics/test_lifting.py::test_cuda_kernel_matches_cpu_reference" > "$OUT/pytest_cuda.log" 2>&1
echo "pytest rc=$?" | tee -a "$LOG"; tail -n 3 "$OUT/pytest_cuda.log" | tee -a "$LOG"

stage "render benchmark (gsplat)"
timeout 150 $PY benchmarks/bench_render.py --backends gsplat --repeats 20 --out "$OUT/render_gpu.json" 2>&1 | tee -a "$LOG"

stage "render/gaussians/semantics tests with CUDA present"
timeout 90 $PY -m pytest -q -p no:cacheprovider tests/render tests/gaussians tests/semantics > "$OUT/pytest_render.log" 2>&1
echo "pytest rc=$?" | tee -a "$LOG"; tail -n 3 "$OUT/pytest_render.log" | tee -a "$LOG"
stage "done"
