"""Every command's and sub-command's help is written for people: plain sentences, no docstring
markup, every option explained, and examples that the parser accepts as they are printed."""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator

from llmtrail.cli import build_parser

MARKUP = ("``", "`", ":param", ":class:", ":func:", ":meth:", ":mod:", ":attr:", ":exc:",
          ":return", ":rtype", ".. code", ".. note", "**", "\\n")  # fmt: skip
ROLE = re.compile(r":[a-z]+:\S")  # any other reST role, :role:`x`
SHELL = {"|", "<", ">", "&&", ";"}


def every_parser(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """The parser and, depth first, every sub-command's parser, with its command path."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from every_parser(child, (*path, name))


def examples_in(help_text: str) -> list[str]:
    """The command lines under the Example: or Examples: heading at the end of a help."""
    lines = help_text.splitlines()
    heads = [i for i, line in enumerate(lines) if line in ("Example:", "Examples:")]
    if not heads:
        return []
    return [line.strip() for line in lines[heads[-1] + 1 :] if line.strip()]


def argv_of(example: str) -> list[str]:
    """An example's arguments after ``llmtrail``, up to any shell pipe or redirection."""
    words = shlex.split(example)
    cut = next((i for i, word in enumerate(words) if word in SHELL), len(words))
    return words[1:cut]


def test_the_walk_reaches_every_command_and_sub_command() -> None:
    paths = {path for path, _ in every_parser(build_parser())}
    assert {("logs",), ("prices", "set"), ("cost", "recompute"), ("queries", "show")} <= paths
    assert {("config", "show"), ("profiles", "untag"), ("budgets", "delete")} <= paths
    assert len(paths) >= 35


def test_every_help_is_plain_text_with_examples_that_parse() -> None:
    problems: list[str] = []
    for path, parser in every_parser(build_parser()):
        name = " ".join(("llmtrail", *path))
        text = parser.format_help()
        problems += [f"{name}: help contains {mark!r}" for mark in MARKUP if mark in text]
        problems += [f"{name}: help contains the role {m!r}" for m in ROLE.findall(text)]
        if not (parser.description or "").strip():
            problems.append(f"{name}: no description")
        for action in parser._actions:
            if not isinstance(action, argparse._SubParsersAction) and not action.help:
                problems.append(f"{name}: {action.option_strings or action.dest} has no help")
        examples = examples_in(text)
        if not examples:
            problems.append(f"{name}: no Example: lines at the end of its help")
        for example in examples:
            if example != name and not example.startswith(name + " "):
                problems.append(f"{name}: the example {example!r} is for another command")
                continue
            try:
                build_parser().parse_args(argv_of(example))
            except SystemExit:
                problems.append(f"{name}: the example {example!r} does not parse")
    assert not problems, "\n".join(problems)


def test_help_is_what_the_installed_command_prints() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "llmtrail", "prices", "set", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("usage: llmtrail prices set")
    assert "Examples:\n  llmtrail prices set --provider openai" in done.stdout
    assert "USD per million tokens" in done.stdout
