"""dvlite: data and model versioning beside git."""

__version__ = "0.1.0"
