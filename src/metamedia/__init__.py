"""metamedia: a self-learning media discovery engine."""

__version__ = "0.1.0"
