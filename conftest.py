"""pytest's settings for every run from this repository (tests/, impls/ops/, benchmarks/pytest_suite/)."""
import os


def pytest_xdist_auto_num_workers(config):
    """How many processes `-n auto` (pyproject's addopts) starts: none of its own where
    pytest-benchmark times (it times only in the main process), else two, at most one per CPU."""
    if config.getoption("benchmark_only", False) or config.getoption("benchmark_enable", False):
        return 0
    return min(2, os.cpu_count() or 1)
