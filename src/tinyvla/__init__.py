"""tinyvla: tiny-scale Vision-Language-Action policies you can train on a laptop CPU."""

__version__ = "0.1.0"
