"""Every CUDA kernel under cuda/ compiles with the machine's nvcc (CI has nvcc, no GPU)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CUDA_DIR = Path(__file__).resolve().parents[2] / "cuda"
KERNELS = sorted(CUDA_DIR.glob("*.cu"))
NVCC = shutil.which("nvcc")


def test_there_are_kernels() -> None:
    assert KERNELS, "cuda/ holds no .cu files"


@pytest.mark.skipif(NVCC is None, reason="nvcc not installed")
@pytest.mark.parametrize("kernel", KERNELS, ids=lambda p: p.name)
def test_kernel_compiles(kernel: Path, tmp_path: Path) -> None:
    # sm_90: the Hopper GPUs (H100/H200) the project is measured on.
    proc = subprocess.run(
        [NVCC, "-std=c++17", "-O3", "-arch=sm_90", "-Werror", "all-warnings", "-c", str(kernel), "-o", str(tmp_path / "k.o")],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "k.o").stat().st_size > 0
