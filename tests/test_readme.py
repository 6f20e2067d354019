"""The README is the user guide: every `fcn-edge` command in it parses with the real parser,
every tool it names exists, and its vocabulary table says what the parsers do.

A renamed or removed flag therefore fails here instead of leaving the guide stale.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Dict, List, Set

import pytest

from fcn_edge.cli.main import build_parser, parse_args

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


SHELL_LANGUAGES = ("", "bash", "sh", "console", "shell")


def fenced_blocks(text: str, languages=SHELL_LANGUAGES) -> List[str]:
    """The bodies of the fenced code blocks whose language is one of ``languages``."""
    blocks, body, language = [], None, ""
    for line in text.splitlines():
        if line.startswith("```"):
            if body is None:
                body, language = [], line[3:].strip()
            else:
                if language in languages:
                    blocks.append("\n".join(body))
                body = None
        elif body is not None:
            body.append(line)
    return blocks


def shell_commands(text: str) -> List[str]:
    """Commands of the README's shell blocks, continuation lines joined, comments dropped."""
    commands = []
    for block in fenced_blocks(text):
        pending = ""
        for line in block.splitlines():
            line = pending + line.strip()
            pending = ""
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def fcn_edge_argvs(text: str) -> List[List[str]]:
    """Each `fcn-edge ...` invocation (also after `&&`, `$ ` or `sudo`), as an argv without the program."""
    argvs = []
    for command in shell_commands(text):
        lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        words: List[str] = []
        for token in list(lexer) + [";"]:
            if token not in (";", "&&", "||", "|", "&"):
                words.append(token)
                continue
            while words and words[0] in ("$", "sudo", "time"):
                words = words[1:]
            if words and words[0] == "fcn-edge":
                argvs.append(words[1:])
            words = []
    return argvs


ARGVS = fcn_edge_argvs(README)


def test_the_readme_opens_with_the_two_setup_commands():
    first_block = fenced_blocks(README)[0]
    lines = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert lines == ["make demo", "make test"]


def test_the_guide_shows_many_commands():
    assert len(ARGVS) >= 40, f"found only {len(ARGVS)} fcn-edge commands in README.md"


@pytest.mark.parametrize("argv", ARGVS, ids=[" ".join(a)[:70] for a in ARGVS])
def test_every_readme_command_parses(argv, capsys):
    parser = build_parser()
    try:
        args = parse_args(parser, argv)
    except SystemExit as exc:  # --help / --version exit 0; a parse error exits 2
        assert exc.code == 0, f"`fcn-edge {' '.join(argv)}` does not parse: {capsys.readouterr().err}"
        return
    assert args.command


def test_every_tool_the_readme_names_exists():
    for command in shell_commands(README):
        for script in re.findall(r"python3? (tools/\S+\.py)", command):
            assert (ROOT / script).is_file(), f"README names {script}, which does not exist"


def _subcommand_options() -> Dict[str, Set[str]]:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return {
        name: {s for action in sub._actions for s in action.option_strings if s.startswith("--")} - {"--help"}
        for name, sub in subparsers.choices.items()
    }


def _vocabulary_rows() -> Dict[str, Set[str]]:
    """The README's vocabulary table: flag -> the subcommands it lists."""
    section = README.split("## The vocabulary", 1)
    assert len(section) == 2, "README.md has no '## The vocabulary' section"
    rows = {}
    for line in section[1].split("\n## ", 1)[0].splitlines():
        cells = [c.strip() for c in line.replace("\\|", "/").strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`-"):
            flags = re.findall(r"--[a-z0-9-]+", cells[0])
            commands = set(re.findall(r"[a-z][a-z-]+", cells[2]))
            for flag in flags:
                rows[flag] = commands
    return rows


def test_the_vocabulary_table_matches_the_parsers():
    """Every flag that two or more subcommands take is in the table, with exactly those subcommands."""
    options = _subcommand_options()
    taken_by: Dict[str, Set[str]] = {}
    for command, flags in options.items():
        for flag in flags:
            taken_by.setdefault(flag, set()).add(command)
    rows = _vocabulary_rows()
    shared = {flag for flag, commands in taken_by.items() if len(commands) >= 2}
    missing = sorted(shared - set(rows))
    assert not missing, f"flags taken by several subcommands but missing from the vocabulary table: {missing}"
    wrong = {flag: (sorted(rows[flag]), sorted(taken_by.get(flag, ()))) for flag in rows
             if rows[flag] != taken_by.get(flag, set())}
    assert not wrong, f"vocabulary rows that disagree with the parsers (README, parsers): {wrong}"
