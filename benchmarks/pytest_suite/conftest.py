import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_configure(config):
    # pytest-benchmark writes --benchmark-json only after every benchmark ran, into a folder
    # it does not create: make it now rather than lose the run (results/pytest-benchmark/).
    path = config.getoption("benchmark_json", None)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
