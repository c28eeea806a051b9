"""HOW stratbench measures and shows the strategies in `impls`."""

__version__ = "0.1.0"
