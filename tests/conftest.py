"""Shared fixtures: where the real data lies (../shared/data beside the repo, never copied in)."""

from __future__ import annotations

import os
from pathlib import Path

# MuJoCo renders on the CPU through OSMesa here (no display, no GPU); set before it is imported.
os.environ.setdefault("MUJOCO_GL", "osmesa")

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def data_dir(name: str) -> Path:
    """A folder of ../shared/data, or skip the test with a clear reason."""
    path = DATA / name
    if not path.exists():
        pytest.skip(f"real data {path} is absent (expected ../shared/data beside the repo)")
    return path


@pytest.fixture(scope="session")
def kitchen_dir() -> Path:
    return data_dir("7scenes_kitchen")


@pytest.fixture(scope="session")
def ouster_dir() -> Path:
    return data_dir("ouster")
