"""Which stored run answers a question (`stratbench recommend`), and the line that says whose it is:
this machine's type first (with oneDNN as here), else the machine named, else the newest, saying
how it differs."""

from __future__ import annotations

import datetime
import pathlib
import platform
import re
import subprocess

from stratbench import environment, results


# how results/README.md names the run it was generated from (publish writes it, published_run reads it)
FROM_RUN = "from the run in `{}`"


def published_run(results_readme) -> pathlib.Path | None:
    """The run directory a published results/README.md was generated from (its FROM_RUN
    phrase), resolved; None when the file is absent or names none."""
    path = pathlib.Path(results_readme)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return None
    found = re.search(re.escape(FROM_RUN).replace(re.escape("{}"), "([^`]+)"), text)
    return (path.parent / found.group(1)).resolve() if found else None


def is_published_run(run_dir) -> bool:
    """Whether run_dir is the run a results/README.md above it (up to three folders up) was
    published from: the committed reference run."""
    run_dir = pathlib.Path(run_dir).resolve()
    return any(published_run(folder / "README.md") == run_dir for folder in list(run_dir.parents)[:3])


class NoResult(Exception):
    """No stored run covers the request; the message says how to make one."""


def env_of(run_dir: pathlib.Path) -> dict:
    path = run_dir / "environment.json"
    return results.read_json(path) if path.exists() else {}


def _same_type(mine: dict, theirs: dict) -> str | None:
    """'' when `theirs` is this machine's type, a note when it is except for parts it did
    not record (memory: older runs), None when it is another type."""
    if environment.machine_identity(theirs) == environment.machine_identity(mine):
        return ""
    if not theirs.get("memory_bytes") and \
            environment.machine_identity(theirs) == environment.machine_identity(mine | {"memory_bytes": None}):
        return "the same type, though that run did not record its memory"
    return None


def differences(mine: dict, theirs: dict) -> str:
    """How another machine differs from this one, part by part."""
    a, b = environment.identity_parts(mine), environment.identity_parts(theirs)
    return "; ".join(f"{k} {b[k]} (here: {a[k]})" for k in a if a[k] != b[k]) or "nothing recorded"


def _git(run_dir: pathlib.Path, *args: str) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(["git", "-C", str(run_dir), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None


def _date(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%d")


def whose_run(run_dir: pathlib.Path, env: dict) -> str:
    """The answer's first line: whose run it reads (the published reference run, another run
    committed to this repository, or the user's own, not committed), when, on what machine,
    at what commit, and where."""
    commit = str(env.get("commit") or "unknown")
    if env.get("started_at"):
        made = f"made {_date(float(env['started_at']))}"
    else:  # older runs did not record when they were made
        found = _git(run_dir, "log", "-1", "--format=%ct", commit) if commit != "unknown" else None
        made = ("date not recorded, its commit of " + _date(float(found.stdout.strip()))
                if found and found.returncode == 0 and found.stdout.strip() else "date not recorded")
    host = env.get("host") or env.get("machine")
    what = (f"{run_dir} ({made}; machine {environment.machine_identity(env)}, host {host}, "
            f"TensorFlow {env.get('tensorflow')}, commit {commit[:8]})")
    if is_published_run(run_dir):
        return f"Answered from the published reference run (results/README.md): {what}"
    tracked = _git(run_dir, "ls-files", "--error-unmatch", "cases.json")
    if tracked is not None and tracked.returncode == 0:
        return f"Answered from a run committed to this repository, not the published reference run: {what}"
    where = "made on this machine" if host == platform.node() else f"made on host {host}"
    return f"Answered from your own run ({where}, not committed): {what}"


def pick_run(candidates, mine: dict, machine: str | None, command: str) -> tuple:
    """(run_dir, table, rows, env, why) among `candidates` (newest first, each measured the
    case): the one `machine` names, else the newest made on this machine's type, else the
    newest of any machine, saying which and how it differs."""
    if machine:
        named = [c for c in candidates if machine in (environment.machine_identity(c[3]), c[3].get("machine"),
                                                      c[3].get("host"))]
        if not named:
            have = sorted({environment.machine_identity(c[3]) for c in candidates})
            raise NoResult(f"no stored run from machine {machine!r} measures this case; machines that do: "
                           f"{', '.join(have)}")
        return (*named[0], f"the newest run of machine {machine} that measured this case")
    same = [(c, _same_type(mine, c[3])) for c in candidates]
    same = [(c, note) for c, note in same if note is not None]
    if same:  # oneDNN as this machine has it by default first (it changes rankings: softmax), then
        # the published reference run over newer ones committed beside it (A/A and held-out runs)
        published = {c[0]: is_published_run(c[0]) for c, _ in same}
        (candidate, note), = sorted(same, key=lambda cn: (cn[0][3].get("onednn") != mine.get("onednn"),
                                                          not published[cn[0][0]]))[:1]
        onednn = environment.onednn_words(candidate[3].get("onednn"))
        which = "the published run" if published[candidate[0]] else "the newest run"
        return (*candidate, f"{which} made on this machine's type that measured this case, with oneDNN "
                f"{onednn}" + (" as here" if candidate[3].get("onednn") == mine.get("onednn") else
                               " (no run of this type with oneDNN as here)") + (f"; {note}" if note else ""))
    newest = candidates[0]
    return (*newest, f"no stored run from this machine's type ({environment.machine_identity(mine)}) measures this "
            f"case, so this is the newest from another machine, which differs in: {differences(mine, newest[3])}. "
            f"Figures here can rank strategies differently. Measure it here with:\n  {command}")
