"""Suite-wide options: tests marked `slow` run only with --run-slow (the default run stays within its time budget);
tests marked `system` (the qemu VM tier in tests/system) only with --run-system; tests marked `faults` (the fault
suite in tests/faults) only with --run-faults, at the scale --fault-scale or $TAGD_FAULT_SCALE gives (1 = CI)."""

import os

import pytest

FAULT_SCALE_ENV = "TAGD_FAULT_SCALE"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", default=False, help="also run tests marked slow")
    parser.addoption("--run-system", action="store_true", default=False,
                     help="also run the VM tier (tests/system): boots qemu guests, minutes; see docs/testing.md")
    parser.addoption("--run-faults", action="store_true", default=False,
                     help="also run the fault suite (tests/faults); see docs/reliability.md")
    parser.addoption("--fault-scale", type=float, default=None,
                     help=f"how much the fault suite does: 1 is the CI scale (default: ${FAULT_SCALE_ENV} or 1)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "faults: the fault suite (crash, outage, fuzz, hostile server, soak); "
                                       "run with --run-faults")


def fault_scale(config: pytest.Config) -> float:
    """The fault suite's scale: --fault-scale, else $TAGD_FAULT_SCALE, else 1 (the CI scale)."""
    scale = config.getoption("--fault-scale")
    if scale is None:
        scale = float(os.environ.get(FAULT_SCALE_ENV) or 1)
    if not scale > 0:
        raise pytest.UsageError(f"the fault scale must be above 0, got {scale:g}")
    return scale


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--run-system"):
        skip_system = pytest.mark.skip(reason="system tier (qemu guest): run with --run-system")
        for item in items:
            if "system" in item.keywords:
                item.add_marker(skip_system)
    if not config.getoption("--run-faults"):
        skip_faults = pytest.mark.skip(reason="fault suite: run with --run-faults")
        for item in items:
            if "faults" in item.keywords:
                item.add_marker(skip_faults)
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def site(tmp_path):
    """The reference server on loopback with the demo business, and this reader enrolled (run_support.Site)."""
    from tests.integration.run_support import Site

    site = Site(str(tmp_path))
    yield site
    site.stop()
