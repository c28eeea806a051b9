"""Build the compiled ops against the TensorFlow installed here, once per source version.

One library per kernels folder: each op's (impls/ops/<op>/kernels/: *.cc for the CPU and
the op registration, *.cu for CUDA), and this folder's own (floor.cc, the call floor's
empty op), each compiled with the shared headers here (stratbench.h, exp.h, stratbench.cuh,
gpu.h, and gpu_common.cu for CUDA).  An op whose kernels fail to build is unavailable
under custom_op by its name, with the compiler's message; the others still load.  The
sources spell no op name: each library is compiled with its spec's custom_op name and the
C++ op name derived from it (`defines`), which gpu.h turns into the op's registered names
and the harness's C entry points.

A library is cached under a key of source hash + TF version + compiler + flags, so
changed sources rebuild (which is how asv measures each commit's own op) and unchanged
ones load at once.  A file lock makes concurrent builds safe: the first process builds,
the others wait and load its result; the library appears by an atomic rename.  A
failed build is remembered under its key with the compiler's message, so workers do
not retry it; `stratbench build --force` does.
"""

from __future__ import annotations

import concurrent.futures
import fcntl
import hashlib
import os
import pathlib
import shutil
import subprocess
import tempfile
import threading
from typing import NamedTuple

HERE = pathlib.Path(__file__).resolve().parent
SOURCE_SUFFIXES = (".cc", ".cu", ".h", ".cuh")
SHARED = [HERE / name for name in ("stratbench.h", "exp.h", "stratbench.cuh", "gpu.h", "gpu_common.cu")]  # in every library
# -march=native breaks TF's Eigen headers with GCC 12 on AVX-512 machines (the avx512
# target names its extensions instead); GCC
# vectorises std::floor only with -fno-trapping-math; -DNDEBUG drops Eigen's bounds
# asserts, which keep some loops from being vectorised.
BASE_FLAGS = ["-O3", "-DNDEBUG", "-fPIC", "-shared", "-fno-trapping-math", "-fno-math-errno",
              "-Wno-deprecated-declarations"]
# Target ISAs, by what the CPU must have and the flags that use it.  "generic" is the
# compiler's default target (x86-64: SSE2), which runs on any CPU TensorFlow runs on.
# STRATBENCH_CPU_ISA picks one by name; by default the best one that both this CPU
# (/proc/cpuinfo) and this compiler support, so the library never holds an instruction
# the machine that built it cannot run.
ISAS = {
    "avx512": ({"avx2", "fma", "f16c", "avx512f", "avx512vl", "avx512dq", "avx512bw"},
               ["-mavx2", "-mfma", "-mf16c", "-mavx512f", "-mavx512vl", "-mavx512dq", "-mavx512bw"]),
    "avx2": ({"avx2", "fma", "f16c"}, ["-mavx2", "-mfma", "-mf16c"]),
    "generic": (set(), []),
}
NVCC_ARCHS = ["-gencode=arch=compute_80,code=sm_80", "-gencode=arch=compute_90,code=sm_90",
              "-gencode=arch=compute_90,code=compute_90"]


_LOG_LOCK = threading.Lock()


class BuildError(RuntimeError):
    """The op could not be built; the message says why and what to do."""


class Library(NamedTuple):
    """One compiled library: a kernels folder and the op it holds, by its spec's custom_op
    name (snake case: the library's Python function and the C entry points' suffix)."""

    folder: pathlib.Path
    entry: str

    @property
    def name(self) -> str:
        """What the library goes by: its op folder's name, or 'floor' for this folder's."""
        return "floor" if self.folder == HERE else self.folder.parent.name


# the call floor's empty op (floor.cc), as stratbench/timing.py's FLOOR_SPEC names it (that
# spec is the harness's, and `stratbench compare` pairs it with an older commit's impls)
FLOOR = Library(HERE, "stratbench_floor")


def op_type(entry: str) -> str:
    """The C++ op name of a snake_case custom_op name: stable_softmax -> StableSoftmax."""
    return "".join(part.title() for part in entry.split("_"))


def defines(entry: str) -> list[str]:
    """What an op's sources are compiled with to name it (gpu.h): its entry and its C++ op name."""
    return [f"-DSTRATBENCH_OP_ENTRY={entry}", f"-DSTRATBENCH_OP_TYPE={op_type(entry)}"]


def nvcc_flags(entry: str) -> list[str]:
    """nvcc's flags for an op's .cu files, for the library and the standalone GPU harness alike."""
    return ["-O3", "-std=c++17", "-Xcompiler", "-fPIC", *NVCC_ARCHS, f"-I{HERE}", *defines(entry)]


def cache_root() -> pathlib.Path:
    default = pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache")) / "stratbench"
    return pathlib.Path(os.environ.get("STRATBENCH_CACHE", default))


def _version(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _compiler_accepts(cxx: str, flags: list[str]) -> bool:
    if not flags:
        return True
    try:
        return subprocess.run([cxx, *flags, "-x", "c++", "-fsyntax-only", "-"], input="int main(){}",
                              capture_output=True, text=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def target_isa(cxx: str | None) -> str:
    """The ISA to build for: STRATBENCH_CPU_ISA, or the best one this CPU and compiler support."""
    asked = os.environ.get("STRATBENCH_CPU_ISA", "").strip()
    if asked:
        if asked not in ISAS:
            raise BuildError(f"STRATBENCH_CPU_ISA={asked!r} is not a known target; accepted: {', '.join(ISAS)}")
        missing = ISAS[asked][0] - _cpu_flags()
        if missing:  # the library would die of an illegal instruction here
            raise BuildError(f"STRATBENCH_CPU_ISA={asked} needs CPU features this machine lacks: "
                             f"{', '.join(sorted(missing))}; accepted here: "
                             f"{', '.join(n for n, (needs, _) in ISAS.items() if needs <= _cpu_flags())}")
        return asked
    cpu = _cpu_flags()
    return next(name for name, (needs, flags) in ISAS.items()
                if needs <= cpu and (cxx is None or _compiler_accepts(cxx, flags)))


def _cuda_home(nvcc: str | None) -> pathlib.Path | None:
    """The CUDA toolkit, when nvcc and its static runtime are both there (STRATBENCH_CUDA=0 skips)."""
    if not nvcc or os.environ.get("STRATBENCH_CUDA", "1") == "0":
        return None
    candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"),
                  pathlib.Path(nvcc).resolve().parent.parent, "/usr/local/cuda"]
    for home in candidates:
        if home and (pathlib.Path(home) / "lib64" / "libcudart_static.a").exists():
            return pathlib.Path(home)
    return None


def library_of(spec) -> Library:
    """The library of an op spec with a compiled op: its op folder's kernels/, or this folder
    for a spec declared in code (the call floor's)."""
    return Library(spec.folder / "kernels" if spec.folder is not None else HERE, spec.custom_op)


def libraries() -> list[Library]:
    """Every library to build: the call floor's, then that of every registered op with a
    compiled op (its spec's custom_op) and a kernels folder."""
    import impls

    wanted = [library_of(impls.spec(op)) for op in impls.OPS if impls.spec(op).custom_op]
    return list(dict.fromkeys([FLOOR] + [lib for lib in wanted if lib.folder.is_dir()]))


def sources(folder: pathlib.Path) -> list[pathlib.Path]:
    """What the library of `folder` is built from: the shared files here, then its own."""
    own = [p for p in sorted(folder.iterdir()) if p.suffix in SOURCE_SUFFIXES and p not in SHARED]
    return SHARED + own


def plan(lib: Library = FLOOR) -> dict:
    """Everything library `lib` depends on, and the cache key made from it."""
    import tensorflow as tf

    cxx = os.environ.get("CXX", "g++")
    cxx_path = shutil.which(cxx)
    nvcc = shutil.which(os.environ.get("NVCC", "nvcc"))
    cuda = _cuda_home(nvcc)
    isa = target_isa(cxx_path)
    flags = BASE_FLAGS + ISAS[isa][1] + defines(lib.entry)
    if cuda:
        flags = flags + ["-DSTRATBENCH_CUDA"]
    files = sources(lib.folder)
    described = {
        "sources": {f"{p.parent.parent.name}/{p.parent.name}/{p.name}": hashlib.sha256(p.read_bytes()).hexdigest()
                    for p in files},
        "tensorflow": tf.__version__,
        "compiler": _version([cxx_path, "--version"]) if cxx_path else "",
        "nvcc": _version([nvcc, "--version"]) if cuda else "",
        "flags": flags + tf.sysconfig.get_compile_flags() + tf.sysconfig.get_link_flags(),
    }
    key = hashlib.sha256(repr(sorted(described.items())).encode()).hexdigest()[:16]
    return {"name": lib.name, "entry": lib.entry, "key": key, "library": f"stratbench_{lib.name}.so",
            "sources": files, "isa": isa, "cxx": cxx_path, "cxx_name": cxx, "nvcc": nvcc, "cuda": cuda, "flags": flags,
            "tf_compile": tf.sysconfig.get_compile_flags(), "tf_link": tf.sysconfig.get_link_flags(),
            "tf_include": tf.sysconfig.get_include()}


def _run(cmd: list[str], log) -> None:
    result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=HERE)
    with _LOG_LOCK:  # compilers run side by side: each command's lines stay together
        log.write("$ " + " ".join(cmd) + "\n" + result.stdout)
        log.flush()
    if result.returncode:
        raise BuildError(_trim(result.stdout) or f"{cmd[0]} exited with status {result.returncode}")


def _run_all(cmds: list[list[str]], log) -> None:
    """Every command at once, as many side by side as there are CPUs (each source is its
    own compiler process: a library of two .cc and two .cu files builds in about the time
    of its slowest file on 2 cores); the first failure's BuildError once all have ended."""
    with concurrent.futures.ThreadPoolExecutor(max(1, min(len(cmds), os.cpu_count() or 1))) as pool:
        for future in [pool.submit(_run, cmd, log) for cmd in cmds]:
            future.result()


def _trim(text: str, lines: int = 12, chars: int = 1500) -> str:
    """The compiler's first error lines, which say what went wrong."""
    wanted = [line for line in text.splitlines() if "error" in line.lower()] or text.splitlines()
    return "\n".join(wanted[:lines])[:chars]


def _compile(p: dict, out_dir: pathlib.Path, log) -> bool:
    """Compile (each source in its own process, side by side) and link into out_dir; True
    when the CUDA kernels are in.  A CUDA step that fails leaves a CPU-only library (its
    message stays in build.log)."""
    flags = [f for f in p["flags"] if f != "-shared"]
    cc = [s for s in p["sources"] if s.suffix == ".cc"]
    cu = [s for s in p["sources"] if s.suffix == ".cu"] if p["cuda"] else []

    def cc_jobs(flags):  # object -> the command that compiles it
        return {(obj := out_dir / f"{i}_{s.stem}.o"): [p["cxx"], *flags, *p["tf_compile"], f"-I{HERE}", "-c", str(s),
                                                      "-o", str(obj)] for i, s in enumerate(cc)}

    cpu = cc_jobs(flags)
    gpu = {(obj := out_dir / f"cu{i}_{s.stem}.o"): [p["nvcc"], *nvcc_flags(p["entry"]), "-c", str(s), "-o", str(obj)]
           for i, s in enumerate(cu)}
    try:
        _run_all([*cpu.values(), *gpu.values()], log)
    except BuildError:
        if not gpu or not all(obj.exists() for obj in cpu) or all(obj.exists() for obj in gpu):
            raise  # a C++ error: the op cannot be built
        log.write("\nCUDA kernels not built; building the CPU-only library\n")
        cpu, gpu = cc_jobs([f for f in flags if f != "-DSTRATBENCH_CUDA"]), {}
        _run_all(list(cpu.values()), log)
    cuda_runtime = [f"-L{p['cuda'] / 'lib64'}", "-lcudart_static", "-ldl", "-lrt", "-lpthread"] if gpu else []
    _run([p["cxx"], "-shared", *flags, *map(str, cpu), *map(str, gpu), "-o", str(out_dir / p["library"]),
          *cuda_runtime, *p["tf_link"]], log)
    return bool(gpu)


def build(lib: Library = FLOOR, force: bool = False) -> tuple[pathlib.Path, bool]:
    """(path of library `lib` for its current sources, whether it has the CUDA kernels),
    building it if needed; BuildError naming it and saying why not."""
    p = plan(lib)
    if not p["cxx"]:
        raise BuildError(f"no C++ compiler ({p['cxx_name']}) found: install g++ "
                         "(Debian/Ubuntu: apt-get install g++) or set CXX to one")
    root = cache_root()
    target = root / f"{p['name']}-{p['key']}"
    library, failed = target / p["library"], target / "FAILED"
    target.mkdir(parents=True, exist_ok=True)
    with open(root / f"{p['name']}-{p['key']}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process building the same key: wait for it
        if force:
            library.unlink(missing_ok=True)
            failed.unlink(missing_ok=True)
        info = target / "cuda"  # present when the library has the CUDA kernels
        if library.exists():
            return library, info.exists()
        if failed.exists():
            raise BuildError(failed.read_text())
        with tempfile.TemporaryDirectory(dir=target) as tmp, open(target / "build.log", "w") as log:
            try:
                with_cuda = _compile(p, pathlib.Path(tmp), log)
            except BuildError as e:
                failed.write_text(f"{p['name']}'s kernels ({lib.folder}): {e}")
                raise BuildError(failed.read_text()) from None
            if with_cuda:
                info.touch()
            os.replace(pathlib.Path(tmp) / p["library"], library)
    return library, with_cuda
