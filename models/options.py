"""Parsed command-line options into the config dataclasses the commands run with."""

import argparse
import dataclasses
from typing import TypeVar

Config = TypeVar("Config")


def from_arguments(config_class: type[Config], args: argparse.Namespace, **given) -> Config:
    """A config dataclass from a parsed command line: each field that an option of the same
    name sets, then `given` (fields named otherwise, or with a computed default)."""
    names = {field.name for field in dataclasses.fields(config_class)}
    options = {name: value for name, value in vars(args).items() if name in names}
    return config_class(**(options | given))
