"""The portal's version, shown on every page and in support details."""

__version__ = "0.1.0"
