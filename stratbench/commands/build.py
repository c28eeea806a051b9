"""`stratbench build`: the compiled op (custom_op) against the TensorFlow installed here."""

from __future__ import annotations

from stratbench.commands import present

NEEDS_TENSORFLOW = True


def add_parser(sub, common) -> None:
    parser = sub.add_parser(
        "build", parents=[common],
        help="build the compiled op (custom_op) against the TensorFlow installed here",
        description=(
            "Compile the ops' kernels (impls/ops/OP/kernels: C++ CPU kernels, and CUDA kernels when nvcc and a CUDA "
            "runtime are found; STRATBENCH_CUDA=0 skips them) into a library cached under a key of source hash, "
            "TensorFlow version, compiler and flags ($STRATBENCH_CACHE, default ~/.cache/stratbench). "
            "Happens automatically on first use; this command does it up front or, with --force, again."
        ),
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if this key is cached (or failed before)")
    parser.set_defaults(func=main)


def main(args) -> int:
    from impls.kernels import build

    failed = []
    for lib in build.libraries():  # one library each: one that fails leaves the others usable
        try:
            path, with_cuda = build.build(lib, force=args.force)
        except build.BuildError as e:
            present.error("build", f"{lib.name}'s compiled op failed to build:\n{e}")
            failed.append(lib.name)
            continue
        kernels = "CPU and CUDA kernels" if with_cuda else "CPU kernels only (no nvcc with a CUDA runtime found)"
        print(f"built {lib.name}: {path}\n  {kernels}; log: {path.parent / 'build.log'}")
    if failed:
        return present.error("build", f"{', '.join(failed)} failed; custom_op is unavailable for them only", 1)
    return 0
