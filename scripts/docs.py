"""Rewrites the parts of the docs that the code defines, so that they cannot drift from it:
docs/settings.md from the service's Settings class, and in docs/cli.md each command's option
list from its own --help.

    python scripts/docs.py           # rewrite them
    python scripts/docs.py --check   # exit 1, naming each file that differs from the code
"""

import argparse
import contextlib
import importlib
import importlib.util
import io
import os
import re
import sys
import types
import typing
from pathlib import Path

from pydantic.fields import FieldInfo

ROOT = Path(__file__).resolve().parents[1]
SETTINGS_DOC = ROOT / "docs" / "settings.md"
CLI_DOC = ROOT / "docs" / "cli.md"
REGENERATE = "python scripts/docs.py"
# argparse wraps help to the terminal's width; a fixed one writes the same text everywhere.
HELP_COLUMNS = "100"
# In docs/cli.md: a marker naming the command, then the code block its --help fills.
HELP_BLOCK = re.compile(
    r"(?P<head><!-- help: python -m (?P<command>[^>]+?) -->\n```text\n)(?P<body>.*?)(?P<tail>```)",
    re.DOTALL,
)
GROUP_TITLE = re.compile(r"\S[^\n]*:\n  ")
TYPE_NAMES = {str: "text", int: "integer", float: "number", bool: "true or false", Path: "path"}
BOUNDS = {"ge": "≥ {}", "gt": "> {}", "le": "≤ {}", "lt": "< {}"}

SETTINGS_INTRO = f"""\
# Service settings

`python -m service` and `python -m service.cluster` read these from the environment (in the
compose deployment, from `.env`). The command line's `--index`, `--gallery`, `--host`, `--port`
and `--workers` win over the variables of the same names. An invalid value stops the service
at start-up with one line naming the variable.

This page is written by `{REGENERATE}` from `service/settings.py`: edit that, then run it.
"""


def settings_markdown() -> str:
    """docs/settings.md: every TRICL_ variable with its type, default and description."""
    from service.settings import Settings

    rows = ["| variable | type | default | what it sets |", "| --- | --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        description = (field.description or "").replace("|", "\\|")
        rows.append(
            f"| `TRICL_{name.upper()}` | {_type_text(field)} | {_default_text(name, field)} "
            f"| {description} |"
        )
    return SETTINGS_INTRO + "\n" + "\n".join(rows) + "\n"


def _type_text(field: FieldInfo) -> str:
    """ "integer, 1 to 64", "`auto`, `float` or `4bit`", "text, not empty", ..."""
    annotation = field.annotation
    if isinstance(annotation, types.UnionType):  # X | None: the default column says "unset"
        (annotation,) = (arg for arg in typing.get_args(annotation) if arg is not type(None))
    if typing.get_origin(annotation) is typing.Literal:
        choices = [f"`{choice}`" for choice in typing.get_args(annotation)]
        kind = ", ".join(choices[:-1]) + " or " + choices[-1]
    elif typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation)
        kind = f"JSON list of {TYPE_NAMES[item]}"
    else:
        kind = TYPE_NAMES[annotation]
    bounds = {
        name: getattr(rule, name)
        for rule in field.metadata
        for name in (*BOUNDS, "min_length")
        if getattr(rule, name, None) is not None
    }
    if "ge" in bounds and "le" in bounds:
        limits = [f"{bounds.pop('ge')} to {bounds.pop('le')}"]
    else:
        limits = [form.format(bounds[name]) for name, form in BOUNDS.items() if name in bounds]
    if bounds.get("min_length"):
        limits.append("not empty")
    return ", ".join([kind, *limits])


def _default_text(name: str, field: FieldInfo) -> str:
    value = field.default_factory() if field.default_factory else field.default
    if value is None:
        return "unset"
    text = f"`{value}`"
    if name.endswith("_bytes") and value >= 2**20:
        text += f" ({value / 2**20:g} MiB)"
    return text


def command_help(command: str) -> str:
    """What `python -m COMMAND --help` prints; COMMAND may end with a subcommand."""
    module_name, *subcommand = command.split()
    if importlib.util.find_spec(module_name).submodule_search_locations:
        module_name += ".__main__"  # a package's command line, as `python -m` runs it
    module = importlib.import_module(module_name)
    output = io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.suppress(SystemExit):
        module.main([*subcommand, "--help"])
    return output.getvalue()


def option_list(help_text: str) -> str:
    """--help without its description (the page says what the command does in its own words):
    the usage, then each group of arguments, which argparse starts with an unindented title
    line ("options:") over indented lines."""
    usage, *blocks = help_text.split("\n\n")
    groups = [block for block in blocks if GROUP_TITLE.match(block)]
    return "\n\n".join([usage, *groups])


def cli_markdown(text: str) -> str:
    """docs/cli.md with every marked option list replaced by its command's, as --help has it."""
    return HELP_BLOCK.sub(
        lambda block: block["head"] + option_list(command_help(block["command"])) + block["tail"],
        text,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python scripts/docs.py", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only say which files differ")
    args = parser.parse_args(argv)
    os.environ["COLUMNS"] = HELP_COLUMNS
    wanted = {
        SETTINGS_DOC: settings_markdown(),
        CLI_DOC: cli_markdown(CLI_DOC.read_text(encoding="utf-8")),
    }
    stale = [path for path, text in wanted.items() if _read(path) != text]
    if args.check:
        for path in stale:
            print(
                f"{path.relative_to(ROOT)} differs from the code: run `{REGENERATE}`",
                file=sys.stderr,
            )
        return 1 if stale else 0
    for path in stale:
        path.write_text(wanted[path], encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.exists() else None


if __name__ == "__main__":
    sys.exit(main())
