"""How a command presents itself in ``--help`` and how it says it was called wrongly.

Every command and sub-command is added through `add_command`: a one-line summary for the
list in its parent's help, a description in plain sentences, and examples a user can copy.
The help is written for people at a terminal, so it carries no docstring markup, and a test
walks every parser to keep it that way (tests/test_cli_help.py).

A handler that finds a combination of flags it cannot honour raises `UsageError`; `main`
answers it as argparse answers a bad flag: the command's usage, the reason, exit code 2.
"""

from __future__ import annotations

import argparse
import shutil
import textwrap
from collections.abc import Sequence
from typing import Any

HELP_WIDTH = 88


class UsageError(Exception):
    """The arguments parse, but together they ask for something the command cannot do."""


def describe(parser: argparse.ArgumentParser, description: str, examples: Sequence[str]) -> None:
    """Give a parser its description (wrapped here) and an epilog of example command lines."""
    width = min(HELP_WIDTH, shutil.get_terminal_size().columns - 2)  # as argparse wraps
    paragraphs = textwrap.dedent(description).strip().split("\n\n")
    parser.description = "\n\n".join(
        textwrap.fill(" ".join(p.split()), width, break_on_hyphens=False) for p in paragraphs
    )
    heading = "Example:" if len(examples) == 1 else "Examples:"
    parser.epilog = "\n".join([heading, *("  " + line for line in examples)])
    parser.formatter_class = argparse.RawDescriptionHelpFormatter


def add_command(
    subparsers: Any, name: str, summary: str, description: str, examples: Sequence[str]
) -> argparse.ArgumentParser:
    """A sub-command with its summary, description and examples; ``command_parser`` in the
    parsed arguments is this parser, so a `UsageError` prints this command's usage."""
    parser: argparse.ArgumentParser = subparsers.add_parser(name, help=summary)
    describe(parser, description, examples)
    parser.set_defaults(command_parser=parser)
    return parser
