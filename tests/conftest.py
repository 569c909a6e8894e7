"""Suite-wide options: tests marked `slow` run only with --run-slow (the default run stays within its time budget);
tests marked `system` (the qemu VM tier in tests/system) only with --run-system."""

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", default=False, help="also run tests marked slow")
    parser.addoption("--run-system", action="store_true", default=False,
                     help="also run the VM tier (tests/system): boots qemu guests, minutes; see docs/testing.md")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--run-system"):
        skip_system = pytest.mark.skip(reason="system tier (qemu guest): run with --run-system")
        for item in items:
            if "system" in item.keywords:
                item.add_marker(skip_system)
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
