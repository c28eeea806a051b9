"""`stratbench machine`: this machine's identity, the folder its results go to."""

from __future__ import annotations

from stratbench.commands import present

NEEDS_TENSORFLOW = False


def add_parser(sub, common) -> None:
    parser = sub.add_parser(
        "machine", parents=[common],
        help="this machine's identity: the folder its results go to, and the name to give asv",
        description=(
            "Prints this machine's type as results name it: CPU model, best vector ISA, logical CPUs, memory "
            "(GiB) and GPUs, e.g. intel-xeon-amx-2cpu-24gib-nogpu. The same type gives the same name on every "
            "host; a different CPU never does. asv: `asv machine --machine $(stratbench machine) --yes`. "
            "With --verbose, the parts it is made of (and whether oneDNN is on by default here)."
        ),
    )
    parser.set_defaults(func=main)


def main(args) -> int:
    from stratbench import environment

    mine = environment.this_machine()
    print(environment.machine_identity(mine))
    if args.verbose:
        for part, value in environment.identity_parts(mine).items():
            present.log(f"  {part}: {value}")
    return 0
