"""Thin shim: the metadata lives in pyproject.toml; ``pip install -e .`` works either way."""
from setuptools import setup

setup()
