"""The package's version: part of every benchmark row's and optimum row's fingerprint."""

__version__ = "0.1.0"
