"""The strategy registry: every module here declares one strategy (STRATEGY =
impls.strategy.Strategy(...); a user's module may declare several, STRATEGIES = [...]),
plus users' strategies from modules named outside the package, as for ops:

    STRATBENCH_STRATEGY_MODULES=my_strategies.keras_activation,path/to/mine.py   (stratbench --strategy-module)
    [project.entry-points."stratbench.strategies"] keras_activation = "my_strategies.keras_activation"

Strategies are listed by their declared `order`, then as found; a name declared twice is
an error.  The variable is read by every process (workers, asv, pytest).
"""

from __future__ import annotations

import pkgutil

from impls import modules
from impls.strategy import Strategy

ENV_VARIABLE = "STRATBENCH_STRATEGY_MODULES"
ENTRY_POINT_GROUP = "stratbench.strategies"


class StrategyModuleError(modules.UserModuleError):
    """A strategy module could not be imported or declares no valid strategy."""


def user_modules() -> list[str]:
    """Strategy modules named by STRATBENCH_STRATEGY_MODULES, then by installed entry points."""
    return modules.named(ENV_VARIABLE, ENTRY_POINT_GROUP)


def discover() -> dict[str, Strategy]:
    """name -> Strategy: the modules of this package, then the user's, in declared order."""
    package = [f"{__name__}.{m.name}" for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name)]
    found: dict[str, Strategy] = {}
    for name in package + user_modules():
        modules.register(found, modules.declared_in(name, "strategy", Strategy, "STRATEGY", "STRATEGIES",
                                                    StrategyModuleError), "strategy", StrategyModuleError)
    ranked = sorted(enumerate(found.values()), key=lambda item: (item[1].order, item[0]))
    return {strategy.name: strategy for _, strategy in ranked}
