"""What a run was measured on: recorded with every run, and part of its resume key.

Also the named environment settings a worker can be started under (`stratbench run
--env`): on CPU, whether TensorFlow uses oneDNN and which allocator it takes memory
from change the figures more than most strategies do, so they are chosen, recorded
with every row, and read back from what TensorFlow actually does in the worker.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import time


# Environment variables of each setting; a worker sets them before importing TensorFlow.
# TF enables oneDNN by default only on CPUs with AVX-512 VNNI, AMX or similar; without it
# the CPU allocator is TF's plain one (no statistics, fresh pages from the OS for every
# large tensor) unless TF_CPU_ALLOCATOR_USE_BFC asks for its BFC pool.
ENV_SETTINGS = {
    "default": {},  # what this shell exports: TensorFlow's own choice for this CPU
    "plain": {"TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPU_ALLOCATOR_USE_BFC": "false"},
    "bfc": {"TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPU_ALLOCATOR_USE_BFC": "true"},
    "onednn": {"TF_ENABLE_ONEDNN_OPTS": "1", "TF_CPU_ALLOCATOR_USE_BFC": "false"},
}
ENV_HELP = {
    "default": "the variables this shell exports (TensorFlow's own defaults for this CPU)",
    "plain": "oneDNN off, TF's plain CPU allocator: what a CPU without AVX-512 VNNI/AMX gets by default",
    "bfc": "oneDNN off, TF's BFC allocator (TF_CPU_ALLOCATOR_USE_BFC=true): a caching pool",
    "onednn": "oneDNN ops on (TF_ENABLE_ONEDNN_OPTS=1) with oneDNN's caching CPU allocator",
}
# Variables that change what TensorFlow does on CPU, recorded with every run.
TF_CPU_VARIABLES = ("TF_ENABLE_ONEDNN_OPTS", "TF_CPU_ALLOCATOR_USE_BFC", "TF_NUM_INTRAOP_THREADS",
                    "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS", "KMP_BLOCKTIME", "KMP_AFFINITY",
                    "ONEDNN_MAX_CPU_ISA", "LD_PRELOAD", "GLIBC_TUNABLES")
# Vector ISA levels, best last, by /proc/cpuinfo flag.
ISA_LEVELS = (("sse4_2", "sse4_2"), ("avx", "avx"), ("avx2", "avx2"), ("avx512f", "avx512f"),
              ("avx512_vnni", "avx512_vnni"), ("amx", "amx_tile"))


def not_in_effect(name: str, found: dict | None) -> str:
    """Why setting `name` did not take effect in a worker that reported `found`, or ''."""
    wanted = ENV_SETTINGS[name]
    if not found or not wanted:
        return ""
    onednn = _truthy(wanted.get("TF_ENABLE_ONEDNN_OPTS"))
    allocator = "bfc" if _truthy(wanted.get("TF_CPU_ALLOCATOR_USE_BFC")) else "onednn" if onednn else "plain"
    if found["onednn"] is not onednn or found["cpu_allocator"].split("+")[0] != allocator:
        return (f"setting {name} asked for oneDNN {'on' if onednn else 'off'} with the {allocator} allocator, but "
                f"TensorFlow ran with oneDNN {'on' if found['onednn'] else 'off'} and the {found['cpu_allocator']} "
                "allocator: its rows say what really ran")
    return ""


def cpu_isa(flags: str) -> str:
    """The best vector ISA level in a /proc/cpuinfo flags line ('baseline' if none)."""
    have = set(flags.split())
    return next((name for name, flag in reversed(ISA_LEVELS) if flag in have), "baseline")


def transparent_hugepages(path: str = "/sys/kernel/mm/transparent_hugepage/enabled") -> str:
    """The kernel's transparent huge page mode (always, madvise, never; '' if unknown): under
    madvise TF's tensors sit on 4 KiB pages unless GLIBC_TUNABLES=glibc.malloc.hugetlb=1."""
    mode = re.search(r"\[(\w+)\]", _read(path))
    return mode.group(1) if mode else ""


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true")


def _preloaded_malloc() -> str:
    """tcmalloc, jemalloc or mimalloc when one is mapped into this process (LD_PRELOAD), else ''."""
    maps = _read("/proc/self/maps")
    return next((name for name in ("tcmalloc", "jemalloc", "mimalloc") if f"lib{name}" in maps), "")


def tf_allocator_stats(device: str = "CPU") -> str:
    """'' when TensorFlow's allocator on `device` keeps statistics (peaks can be read),
    else why not.  Resets the device's peak as a side effect."""
    import tensorflow as tf

    try:
        tf.config.experimental.reset_memory_stats(f"{device}:0")
        tf.config.experimental.get_memory_info(f"{device}:0")
        return ""
    except (ValueError, tf.errors.OpError) as e:
        if device != "CPU":
            return f"{type(e).__name__}: {e}"
        return ("TF's plain CPU allocator keeps no statistics (oneDNN off, TF_CPU_ALLOCATOR_USE_BFC "
                "unset): `--env bfc` or `--env onednn` measures TF peaks")


def effective() -> dict:
    """What TensorFlow does in this process, read from TensorFlow itself (imports it):
    whether oneDNN ops are on, which CPU allocator it uses, whether that allocator keeps
    statistics, a preloaded malloc, and the thread settings."""
    import tensorflow as tf
    from tensorflow.python.util import _pywrap_util_port

    onednn = bool(_pywrap_util_port.IsMklEnabled())
    # TF's ProcessState takes the BFC pool when asked; otherwise the highest-priority CPU
    # allocator factory: oneDNN's when oneDNN is on, else the plain one.
    allocator = "bfc" if _truthy(os.environ.get("TF_CPU_ALLOCATOR_USE_BFC")) else "onednn" if onednn else "plain"
    malloc = _preloaded_malloc()
    return {
        "onednn": onednn,
        "cpu_allocator": allocator + (f"+{malloc}" if malloc else ""),
        "tf_allocator_stats": tf_allocator_stats("CPU") or "yes",
        "tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),  # 0: TF's default
        "tf_inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "variables": {k: os.environ[k] for k in TF_CPU_VARIABLES if k in os.environ},
    }


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


def memory_bytes() -> int | None:
    """Physical memory (Linux /proc/meminfo MemTotal), or None."""
    total = re.search(r"^MemTotal:\s+(\d+)", _read("/proc/meminfo"), re.M)
    return int(total.group(1)) * 1024 if total else None


def _slug(text: str) -> str:
    """'Intel(R) Xeon(R) Platinum 8488C CPU @ 2.40GHz' -> 'intel-xeon-platinum-8488c'."""
    text = re.sub(r"\((R|TM|tm|r)\)|\bCPU\b|\bProcessor\b|@.*$|\d+-Core", " ", text or "unknown")
    return "-".join(re.findall(r"[a-z0-9_.]+", text.lower())) or "unknown"


def machine_identity(env: dict) -> str:
    """The machine type a run's figures hold for, as a folder name: CPU model, best vector
    ISA, logical CPUs, memory (GiB) and GPUs -- what changes figures; the host name is only
    a label (`host`).  The same type gives the same name; a different CPU never does.  Runs
    that did not record a part (memory: older runs) say so in the name."""
    isa = env.get("cpu_isa") or cpu_isa(env.get("cpu_flags") or "")
    memory = env.get("memory_bytes")
    gpus = [g.get("name", "gpu") for g in env.get("gpus") or []]
    return "-".join([_slug(env.get("cpu_model")), isa, f"{env.get('cpu_count') or '?'}cpu",
                     f"{round(memory / 2**30)}gib" if memory else "mem-unrecorded",
                     "-".join(_slug(g) for g in gpus) if gpus else "nogpu"])


def onednn_words(recorded, unknown: str = "unrecorded") -> str:
    """A recorded oneDNN setting (True or False) in words: "on", "off", or `unknown`."""
    return {True: "on", False: "off"}.get(recorded, unknown)


def identity_parts(env: dict) -> dict:
    """What machine_identity is made of, and oneDNN, for saying how two machines differ."""
    return {"CPU": env.get("cpu_model"), "vector ISA": env.get("cpu_isa") or cpu_isa(env.get("cpu_flags") or ""),
            "logical CPUs": env.get("cpu_count"),
            "memory": f"{round(env['memory_bytes'] / 2**30)} GiB" if env.get("memory_bytes") else "unrecorded",
            "GPUs": ", ".join(g.get("name", "gpu") for g in env.get("gpus") or []) or "none",
            "oneDNN": onednn_words(env.get("onednn"))}


def this_machine() -> dict:
    """This machine's identity fields, read without TensorFlow (GPUs from nvidia-smi)."""
    gpus = [{"name": name} for name in _nvidia_smi("name")]
    cpu = _cpu()
    return {**cpu, "cpu_isa": cpu_isa(cpu["cpu_flags"]), "cpu_count": os.cpu_count(), "memory_bytes": memory_bytes(),
            "gpus": gpus, "onednn": _onednn_default(cpu["cpu_flags"])}


def _onednn_default(flags: str) -> bool:
    """Whether TensorFlow turns oneDNN on here: TF_ENABLE_ONEDNN_OPTS, else the CPU's default."""
    asked = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    return _truthy(asked) if asked is not None else onednn_by_default(flags)


def onednn_by_default(flags: str) -> bool:
    """Whether TensorFlow (2.21) turns oneDNN on unasked on a CPU with these /proc/cpuinfo flags:
    on CPUs with AVX-512 VNNI, AVX-512 BF16, AVX-VNNI or AMX."""
    return bool({"avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile"} & set(flags.split()))


def _cpu() -> dict:
    info = {"cpu_model": platform.processor() or platform.machine(), "cpu_flags": ""}
    for line in _read("/proc/cpuinfo").splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "model name" and info["cpu_model"] in ("", platform.machine(), platform.processor()):
            info["cpu_model"] = value
        elif key == "flags" and not info["cpu_flags"]:
            info["cpu_flags"] = value
    return info


def _nvidia_smi(field: str) -> list[str]:
    """`field` of each NVIDIA GPU as nvidia-smi reports it ([] where it cannot: no driver)."""
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={field}", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] if not out.returncode else []


def _gpus(tf) -> list[dict]:
    gpus = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        gpus.append({"name": details.get("device_name", device.name),
                     "compute_capability": details.get("compute_capability")})
    for gpu, driver in zip(gpus, _nvidia_smi("driver_version") if gpus else []):
        gpu["driver"] = driver
    return gpus


def capture() -> dict:
    import numpy as np
    import tensorflow as tf

    build = tf.sysconfig.get_build_info()
    cpu = _cpu()
    env = {
        "started_at": round(time.time()),  # which of a machine's runs is the newest (results.run_time)
        "host": platform.node(),  # a label: the folder and `machine` are the identity (machine_identity)
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "tensorflow": tf.__version__,
        "tf_cuda_build": bool(build.get("is_cuda_build", False)),
        "cuda_version": build.get("cuda_version", ""),
        "cudnn_version": build.get("cudnn_version", ""),
        **cpu,
        "cpu_isa": cpu_isa(cpu["cpu_flags"]),
        "cpu_count": os.cpu_count(),
        "memory_bytes": memory_bytes(),
        "transparent_hugepages": transparent_hugepages(),
        **effective(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS", ""),
        "custom_op_build": _custom_op_build(),
        "gpus": _gpus(tf),
        **git_state(),
    }
    return {"machine": machine_identity(env), **env}


def _custom_op_build() -> dict:
    """The compiled ops' target ISA and flags as `impls/kernels/build.py` would choose them here,
    and each library's cache key."""
    from impls.kernels import build

    try:
        plans = [build.plan(lib) for lib in build.libraries()]
    except Exception as e:  # recorded, never fatal: the run still measures everything else
        return {"error": f"{type(e).__name__}: {e}"}
    return {"isa": plans[0]["isa"], "flags": " ".join(plans[0]["flags"]),
            "keys": ", ".join(f"{p['name']} {p['key']}" for p in plans)}


def fingerprint(env: dict) -> str:
    """Hash of what makes two runs comparable: software, hardware, threads, oneDNN and the
    allocator of the launching process ('default' setting) -- not the commit."""
    keys = ("machine", "python", "numpy", "tensorflow", "cpu_model", "cpu_count", "onednn", "cpu_allocator",
            "variables", "tf_intra_op_threads", "tf_inter_op_threads", "omp_num_threads", "gpus")
    return hashlib.sha256(json.dumps({k: env.get(k) for k in keys}, sort_keys=True).encode()).hexdigest()[:8]


def run_id(env: dict) -> str:
    """Same commit (and same uncommitted change) in the same environment -> same run, which resumes."""
    commit = env["commit"][:10]
    dirty = f"-dirty-{env['diff_sha']}" if env["dirty"] else ""
    return f"{commit}{dirty}-{fingerprint(env)}"
