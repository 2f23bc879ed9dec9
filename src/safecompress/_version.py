"""The package version (one place; read by the package, reports and the build)."""

__version__ = "0.1.0"
