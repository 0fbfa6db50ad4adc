"""Readers for the deployment files, so tests can hold them against the code."""

import json
import re
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SCALE_FILE = ROOT / "docker" / "compose.scale.yml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
LB_DOCKERFILE = ROOT / "docker" / "Dockerfile.lb"
NGINX_CONF = ROOT / "docker" / "nginx.conf"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERIGNORE = ROOT / ".dockerignore"

_VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<operator>:?-)(?P<default>[^}]*))?\}")


class _Reset:
    """Compose's `!reset` tag: the value of the files before is dropped."""


class _ComposeLoader(yaml.SafeLoader):
    pass


_ComposeLoader.add_constructor("!reset", lambda loader, node: _Reset())


def compose(*files: Path) -> dict:
    """The compose file, or several merged as `docker compose -f A -f B` merges them."""
    merged: dict = {}
    for path in files or (COMPOSE_FILE,):
        _merge(merged, yaml.load(path.read_text(), Loader=_ComposeLoader))
    return merged


def _merge(base: dict, override: dict) -> None:
    for key, value in override.items():
        if isinstance(value, _Reset):
            base.pop(key, None)
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def compose_variables() -> dict[str, str | None]:
    """Every ${NAME...} the compose files interpolate -> its default (None if it has none)."""
    found = {}
    for path in (COMPOSE_FILE, SCALE_FILE):
        for match in _VARIABLE.finditer(path.read_text()):
            found[match["name"]] = match["default"]
    return found


def interpolate(value, environment: dict[str, str]):
    """Compose's ${NAME:-default} / ${NAME-default} substitution, over nested structures."""
    if isinstance(value, dict):
        return {key: interpolate(item, environment) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, environment) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        current = environment.get(match["name"])
        if match["operator"] == ":-" and not current:
            return match["default"]
        if match["operator"] == "-" and current is None:
            return match["default"]
        return current or ""

    return _VARIABLE.sub(substitute, value)


def env_example() -> tuple[dict[str, str], set[str]]:
    """(NAME -> value of the lines in effect, every NAME mentioned, commented out or not)."""
    values, mentioned = {}, set()
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.fullmatch(r"(#\s*)?([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            mentioned.add(match[2])
            if not match[1]:
                values[match[2]] = match[3]
    return values, mentioned


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def dockerfile_values(keyword: str, path: Path = DOCKERFILE) -> dict[str, str]:
    """NAME -> value of every ARG or ENV (NAME=value pairs)."""
    values = {}
    for instruction, arguments in dockerfile_instructions(path):
        if instruction == keyword:
            for pair in shlex.split(arguments):
                name, _, value = pair.partition("=")
                values[name] = value
    return values


def dockerfile_exec(keyword: str, stage: str, path: Path = DOCKERFILE) -> list[str]:
    """The exec-form command of CMD, or of HEALTHCHECK (after its options), in build stage
    `stage` (FROM ... AS stage)."""
    current = None
    for instruction, arguments in dockerfile_instructions(path):
        if instruction == "FROM":
            current = arguments.split()[-1] if " AS " in arguments.upper() else None
        elif instruction == keyword and current == stage:
            return json.loads(arguments[arguments.index("[") :])
    raise LookupError(f"{path} has no {keyword} in stage {stage}")
