"""The docs that the code defines say what the code does: docs/settings.md is the Settings
class, and docs/cli.md holds the --help of every command line."""

import subprocess
import sys

import pytest

from tests.helpers.commands import COMMANDS, ROOT


def test_the_generated_docs_are_current():
    result = subprocess.run(
        [sys.executable, "scripts/docs.py", "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_line_is_in_cli_md(command):
    """Its block lists its subcommands too, so a new one shows up when the page is rewritten."""
    page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert f"<!-- help: python -m {command} -->" in page
