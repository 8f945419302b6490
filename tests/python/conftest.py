"""Shared pytest set-up: hypothesis profiles and Go's checkPageAlloc."""

import os

import pytest
from hypothesis import HealthCheck, settings

import pagealloc

# CI=true selects a bounded profile; `--hypothesis-profile=thorough` (or
# HYPOTHESIS_PROFILE=thorough) runs long local searches.
settings.register_profile(
    "ci",
    max_examples=120,
    stateful_step_count=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=200, stateful_step_count=50, deadline=None)
# About 20 minutes on 2 cores for the state machine.
settings.register_profile(
    "long",
    max_examples=1000,
    stateful_step_count=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    max_examples=5000,
    stateful_step_count=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") == "true" else "dev")
)

ARCHES = ("amd64", "arm64", "386")


@pytest.fixture(params=ARCHES)
def arch(request):
    return request.param


def check_page_alloc(want: pagealloc.PageAlloc, got: pagealloc.PageAlloc) -> None:
    """Go 1.19's checkPageAlloc: same bounds and, in every chunk of
    [start, end), the same alloc bitmap and the same scavenged bitmap; then
    verify() for the summaries (Go's TODO)."""
    assert got.bounds == want.bounds, "start/end values not equal"
    start, end = got.bounds
    for ci in range(start, end):
        g, w = got.chunk_bitmap(ci), want.chunk_bitmap(ci)
        assert g == w, f"chunk {ci:#x}: got runs {got.chunk_ranges(ci)}, want {want.chunk_ranges(ci)}"
        gs, ws = got.chunk_scavenged(ci), want.chunk_scavenged(ci)
        assert gs == ws, f"chunk {ci:#x} (scavenged): got {gs:#x}, want {ws:#x}"
    got.verify()
