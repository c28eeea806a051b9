"""What a run was measured on: recorded with every run, and part of its resume key."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys


def _git(*args: str) -> str | None:
    """git, asked about the checkout that holds the measured code (the impls package)."""
    import impls

    where = os.path.dirname(os.path.abspath(impls.__file__))
    try:
        out = subprocess.run(["git", "-C", where, *args], capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def git_state() -> dict:
    commit = _git("rev-parse", "HEAD")
    diff = _git("diff", "HEAD") if commit else None
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    dirty = bool(status)
    return {
        "commit": commit or "unknown",
        "dirty": dirty,
        # Identifies the uncommitted change, so a dirty tree never resumes a run of other code.
        "diff_sha": hashlib.sha256(diff.encode()).hexdigest()[:12] if dirty and diff is not None else "",
    }


def _cpu() -> dict:
    info = {"cpu_model": platform.processor() or platform.machine(), "cpu_flags": ""}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and info["cpu_model"] in ("", platform.machine(), platform.processor()):
                    info["cpu_model"] = value.strip()
                elif key == "flags" and not info["cpu_flags"]:
                    info["cpu_flags"] = value.strip()
    except OSError:
        pass
    return info


def _gpus(tf) -> list[dict]:
    gpus = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        gpus.append({"name": details.get("device_name", device.name),
                     "compute_capability": details.get("compute_capability")})
    if gpus:
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=20)
            for gpu, driver in zip(gpus, out.stdout.split()):
                gpu["driver"] = driver
        except (OSError, subprocess.SubprocessError):
            pass
    return gpus


def capture() -> dict:
    import numpy as np
    import tensorflow as tf

    build = tf.sysconfig.get_build_info()
    return {
        "machine": platform.node(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "tensorflow": tf.__version__,
        "tf_cuda_build": bool(build.get("is_cuda_build", False)),
        "cuda_version": build.get("cuda_version", ""),
        "cudnn_version": build.get("cudnn_version", ""),
        **_cpu(),
        "cpu_count": os.cpu_count(),
        "tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),  # 0: TF's default
        "tf_inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS", ""),
        "gpus": _gpus(tf),
        **git_state(),
    }


def fingerprint(env: dict) -> str:
    """Hash of what makes two runs comparable: software, hardware, threads (not the commit)."""
    keys = ("machine", "python", "numpy", "tensorflow", "cpu_model", "cpu_count",
            "tf_intra_op_threads", "tf_inter_op_threads", "omp_num_threads", "gpus")
    return hashlib.sha256(json.dumps({k: env.get(k) for k in keys}, sort_keys=True).encode()).hexdigest()[:8]


def run_id(env: dict) -> str:
    """Same commit (and same uncommitted change) in the same environment -> same run, which resumes."""
    commit = env["commit"][:10]
    dirty = f"-dirty-{env['diff_sha']}" if env["dirty"] else ""
    return f"{commit}{dirty}-{fingerprint(env)}"
