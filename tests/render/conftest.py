"""Fixtures for the renderer tests: the C++ extension is built once per session (logged)."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture(scope="session", autouse=True)
def cpu_rasterizer_ext():
    from ros_gs.render.rasterize_cpu import load_extension

    logging.getLogger("ros_gs.render").setLevel(logging.INFO)
    return load_extension()
