"""The composition root: settings, CLI, logging setup and the wiring of all other packages."""

__version__ = "0.1.0"
