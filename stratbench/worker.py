"""A worker process that measures comparison groups, so a crash, a hang or an
out-of-memory kill costs one group, not the run.  A worker runs under one environment setting (stratbench.environment.ENV_SETTINGS), set before it imports
TensorFlow, and reports what TensorFlow then actually does (`Worker.environment`).  A worker of
`stratbench compare` may take its ops and strategies from elsewhere: stratbench's own from a commit's
checkout (`impls_root`), a user's modules from their repository's checkout of the same commit (the
module variables among `variables`, which every process reads: impls/modules.py)."""

from __future__ import annotations

import multiprocessing
import os
import sys

STARTUP_TIMEOUT_S = 300  # importing TensorFlow on a busy 2-core machine


class WorkerDied(Exception):
    pass


class CaseTimeout(Exception):
    pass


def _use_impls_from(root: str) -> None:
    """Makes `import impls` find the ops and strategies of another checkout (a commit's
    worktree, `stratbench compare`) while stratbench itself, the harness, stays this one."""
    # spawn re-ran the parent's main module, which imported this checkout's impls, and stratbench
    # modules that hold it (matrix reads a case's strategy there): they are imported again
    for name in [n for n in sys.modules if n.split(".")[0] in ("impls", "stratbench") and n != __name__
                 or n.startswith("stratbench_user_")]:  # a user's module made with this checkout's impls
        del sys.modules[name]
    sys.path.insert(0, root)
    try:
        import impls
    finally:  # the commit's own stratbench/ must not stand in for the harness when it is imported again
        sys.path.remove(root)

    if not hasattr(impls, "declaration"):  # a commit from before strategies were declared (before da4e131)
        impls.declaration = _declaration_before_da4e131


def _declaration_before_da4e131(name: str):
    """What the harness reads of a strategy, from an impls whose strategies were modules
    impls/<name>.py with no declaration: the mode the harness of its time gave each."""
    import importlib
    import types

    module = importlib.import_module(f"impls.{name}")
    return types.SimpleNamespace(mode={"native": "eager", "xla": "xla"}.get(name, "tf.function"), needs=(),
                                 implements=lambda spec: True, availability=module.availability,
                                 implement=module.implement)


def _serve(conn, verbose: bool, variables: dict, impls_root: str | None = None) -> None:
    os.environ.update(variables)  # before TensorFlow reads them at import
    if impls_root:
        _use_impls_from(impls_root)
    if not verbose:  # TensorFlow's C++ start-up lines and warnings; the parent reports what matters
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    import impls  # this checkout's, or impls_root's: the ops and strategies measured
    from stratbench import environment, memory, status, timing

    if not verbose:
        tf.get_logger().setLevel("ERROR")
    memory.pregrow_tf_pool()  # no case's tensors then add to the resident size, whatever ran before
    conn.send(("ready", environment.effective()))
    group = None
    while True:
        message = conn.recv()
        if message is None:  # done: every answer is sent, so skip TensorFlow's teardown (~0.7 s)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        kind, payload, settings = message
        try:
            if kind == "group":  # a case: a new comparison group, on inputs of this case's shape
                group = None  # the previous group's tensors go before the next one's are made
                group = timing.Group(payload, settings)
                result = None
            elif kind == "add":  # a case (timing.Floor: its call floor): (status, its warm-up figures or why)
                result = group.add(payload, impls.get)
            elif kind == "sample":  # (entry, input set): seconds per call
                result = group.sample(*payload)
            elif kind == "call":  # (a module-level function, its args): function(*args)
                function, args = payload
                result = function(*args)
            else:
                raise ValueError(f"unknown request {kind!r}; requests: group, add, sample, call")
            conn.send((status.OK, result))
        except timing.TooSlow as e:
            conn.send((status.TOO_SLOW, str(e)))
        except (tf.errors.ResourceExhaustedError, MemoryError) as e:
            conn.send((status.OOM, status.summary(e)))
        except Exception as e:
            conn.send((status.ERROR, status.summary(e)))


class Worker:
    def __init__(self, verbose: bool = False, env: str = "default", impls_root: str | None = None,
                 wait: bool = True, variables: dict | None = None):
        """A worker process under setting `env` (and environment `variables` besides, e.g. the
        user's op modules of one commit); with wait=False it starts (imports TensorFlow,
        seconds) while the caller goes on, and `ready()` waits for it."""
        from stratbench.environment import ENV_SETTINGS

        context = multiprocessing.get_context("spawn")  # TensorFlow does not survive fork
        self.conn, child = context.Pipe()
        self.env = env
        self.process = context.Process(target=_serve, args=(child, verbose, {**ENV_SETTINGS[env], **(variables or {})},
                                                            impls_root), daemon=True)
        self.process.start()
        child.close()
        self.environment = None
        if wait:
            self.ready()

    def ready(self) -> Worker:
        """This worker, once it has started; its `environment`: what TensorFlow does in it."""
        if self.environment is None:
            _, self.environment = self._receive(STARTUP_TIMEOUT_S)
        return self

    def _receive(self, timeout_s: float):
        if not self.conn.poll(timeout_s):
            self.close(kill=True)
            raise CaseTimeout(f"no answer within {timeout_s:g} s")
        try:
            return self.conn.recv()
        except (EOFError, ConnectionResetError):
            self.process.join(5)
            code = self.process.exitcode
            hint = " (killed: likely out of memory)" if code == -9 else ""
            raise WorkerDied(f"the worker process died with exit code {code}{hint}") from None

    def ask(self, kind: str, payload, settings, timeout_s: float):
        """(status, result) of one request, within timeout_s: "group" (a case: a new comparison
        group, timing.Group), "add" (a case, or timing.Floor for its call floor: its status and
        warm-up figures), "sample" ((entry, input set): seconds per call) or "call"
        ((a module-level function, its args): what it returns)."""
        self.send(kind, payload, settings)
        return self.answer(timeout_s)

    def send(self, kind: str, payload, settings) -> None:
        """A request whose answer is collected later (`answer`): workers work at once."""
        self.conn.send((kind, payload, settings))

    def answer(self, timeout_s: float):
        return self._receive(timeout_s)

    def close(self, kill: bool = False) -> None:
        if self.process.is_alive() and not kill:
            try:
                self.conn.send(None)
                self.process.join(10)
            except (BrokenPipeError, OSError):
                pass
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self.conn.close()

    @property
    def alive(self) -> bool:
        return self.process.is_alive()


def starting(workers: list, verbose: bool, env: str, impls_root: str | None = None,
             variables: dict | None = None) -> list[Worker]:
    """`workers` with each missing or dead one replaced by a fresh one under setting `env`,
    not waited for: the fresh ones start side by side, each importing TensorFlow on a core of
    its own (`ready()` waits for one)."""
    return [w if w and w.alive else Worker(verbose, env, impls_root, wait=False, variables=variables) for w in workers]


def live(workers: list, verbose: bool, env: str, impls_root: str | None = None,
         variables: dict | None = None) -> list[Worker]:
    """`starting(...)`, once every worker has started."""
    return [w.ready() for w in starting(workers, verbose, env, impls_root, variables)]


def live_noting(workers: list, verbose, env_name, effective) -> list[Worker]:
    """`workers` while they live, else fresh ones under setting `env_name` (worker.live);
    notes in `effective` what TensorFlow does under that setting."""
    workers = live(workers, verbose, env_name)
    effective[env_name] = workers[0].environment
    return workers
