"""Shared fixtures: bundled specs loaded once per session."""

from __future__ import annotations

import pytest

from perfsim.specs.hardware import load_hardware
from perfsim.specs.model import load_model


@pytest.fixture(scope="session")
def gb300():
    return load_hardware("gb300")


@pytest.fixture(scope="session")
def v32_fp4():
    return load_model("deepseek-v3.2", "fp4")


@pytest.fixture(scope="session")
def r1_fp4():
    return load_model("deepseek-r1", "fp4")
