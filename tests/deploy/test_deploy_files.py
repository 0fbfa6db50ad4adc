"""The Dockerfile, compose file and .env.example hold only commands, flags, ports, volumes and
settings that exist in the code; hadolint finds nothing in the Dockerfile."""

import argparse
import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from indexer.__main__ import build_parser as indexer_parser
from service.__main__ import build_parser as service_parser
from service.control import build_parser as control_parser
from service.settings import Settings
from tests.deploy.deployment_files import (
    COMPOSE_FILE,
    DOCKERFILE,
    DOCKERIGNORE,
    LB_DOCKERFILE,
    NGINX_CONF,
    ROOT,
    SCALE_FILE,
    compose,
    compose_variables,
    dockerfile_exec,
    dockerfile_instructions,
    dockerfile_values,
    env_example,
    interpolate,
)

SETTINGS = {f"TRICL_{name.upper()}" for name in Settings.model_fields}
DEFAULTS = env_example()[0]  # the deployment's defaults, as a user's copied .env has them


def services(*files: Path) -> dict[str, dict]:
    return interpolate(compose(*files)["services"], DEFAULTS)


def container_environment(service: dict) -> dict[str, str]:
    """What the process sees: the image's ENV, then .env (the env_file), then `environment`."""
    environment = dict(dockerfile_values("ENV"))
    if service.get("env_file"):
        environment.update({k: v for k, v in DEFAULTS.items() if v})
    environment.update({k: str(v) for k, v in service.get("environment", {}).items()})
    return environment


def parse_command(argv: list[str]) -> tuple[str, argparse.Namespace]:
    """Parse `python -m MODULE ...` with MODULE's own parser; unknown flags fail the test."""
    assert argv[:2] == ["python", "-m"], argv
    module, arguments = argv[2], argv[3:]
    assert importlib.util.find_spec(module) is not None, f"no module {module}"
    parsers = {
        "indexer": indexer_parser,
        "service": lambda: service_parser(Settings()),
        "service.control": control_parser,
    }
    if module not in parsers:
        assert not arguments, f"{module} takes no arguments: {arguments}"
        return module, argparse.Namespace()
    try:
        return module, parsers[module]().parse_args(arguments)
    except SystemExit:
        pytest.fail(f"python -m {module} does not accept {arguments}")


def mounts(service: dict) -> dict[str, tuple[str, bool]]:
    """Container path -> (source, read-only)."""
    found = {}
    for volume in service["volumes"]:
        source, target, *mode = volume.split(":")
        found[target] = (source, mode == ["ro"])
    return found


def test_commands_parse_with_the_real_command_lines():
    for name, service in services().items():
        stage = service.get("build", {}).get("target", "service")
        command = service.get("command") or dockerfile_exec("CMD", stage)
        module, arguments = parse_command(command)
        if module == "indexer":
            assert arguments.command == "build", name
            targets = mounts(service)
            assert str(arguments.gallery) in targets, f"{name}: --gallery is not mounted"
            out_volume = str(arguments.out.parent)
            assert out_volume in targets and not targets[out_volume][1], (
                f"{name}: --out must lie in a writable volume, beside its staging directory"
            )
        healthcheck = service.get("healthcheck", {})
        if not healthcheck.get("disable"):
            test = healthcheck.get("test") or ["CMD", *dockerfile_exec("HEALTHCHECK", stage)]
            assert test[0] == "CMD"
            parse_command(test[1:])
    for stage in ("service", "indexer"):
        parse_command(dockerfile_exec("CMD", stage))
    parse_command(dockerfile_exec("HEALTHCHECK", "service"))
    # The reload command docker/compose.scale.yml gives for each replica.
    reload = re.search(r"exec --index N api (.+)", SCALE_FILE.read_text())[1].split()
    assert parse_command(reload)[1].action == "reload"


def test_the_deployment_guides_commands_parse():
    guide = (ROOT / "docs" / "deploy.md").read_text()
    compose = guide.split("## Docker Compose", 1)[1].split("\n## Beyond one machine", 1)[0]
    commands = re.findall(r"python -m [\w.]+[^\n`#]*", compose.replace("\\\n", " "))
    assert len(commands) >= 3
    for command in commands:
        parse_command(command.split())


def test_ports_agree():
    (exposed,) = [args for keyword, args in dockerfile_instructions() if keyword == "EXPOSE"]
    api = services()["api"]
    environment = container_environment(api)
    (mapping,) = api["ports"]
    host_port, container_port = mapping.rsplit(":", 1)
    assert (
        exposed
        == container_port
        == environment["TRICL_PORT"]
        == dockerfile_values("ENV")["TRICL_PORT"]
    )
    assert host_port == DEFAULTS["PUBLISH_PORT"]
    assert environment["TRICL_HOST"] == "0.0.0.0"  # reachable through the published port


def test_the_load_balancer_reaches_every_replica():
    scaled = services(COMPOSE_FILE, SCALE_FILE)
    api, lb = scaled["api"], scaled["lb"]
    assert "ports" not in api, "replicas publish nothing; the load balancer does"
    assert int(api["scale"]) >= 2 and lb["depends_on"] == ["api"]
    nginx = NGINX_CONF.read_text()
    upstream = re.search(r"server (\w+):(\d+)[ ;]", nginx)
    assert upstream[1] == "api" and upstream[2] == container_environment(api)["TRICL_PORT"]
    listen = re.search(r"listen (\d+);", nginx)[1]
    (mapping,) = lb["ports"]
    assert mapping == f"{DEFAULTS['PUBLISH_PORT']}:{listen}"
    (exposed,) = [
        args for keyword, args in dockerfile_instructions(LB_DOCKERFILE) if keyword == "EXPOSE"
    ]
    assert exposed == listen
    assert (ROOT / lb["build"]["context"] / lb["build"]["dockerfile"]).resolve() == LB_DOCKERFILE


def test_volumes_hold_what_the_service_reads():
    spec = compose()
    declared = set(spec["volumes"])
    api = services()["api"]
    environment = container_environment(api)
    index = Path(environment["TRICL_INDEX"])
    targets = mounts(api)
    assert targets[str(index.parent)] == ("index-data", True), "the api reads the index read-only"
    assert targets[environment["TRICL_GALLERY"]][1], "the gallery is mounted read-only"
    volume_instruction = [a for k, a in dockerfile_instructions() if k == "VOLUME"]
    assert volume_instruction == [f'["{index.parent}"]']
    for name, service in services().items():
        for source, _ in mounts(service).values():
            assert source.startswith(("/", ".")) or source in declared, f"{name}: {source}"
        if name.startswith("indexer"):
            _, arguments = parse_command(service["command"])
            assert arguments.out == index, f"{name} writes where the api does not read"
            assert mounts(service)[str(index.parent)] == ("index-data", False)


def test_every_setting_is_real_and_documented():
    _, mentioned = env_example()
    used = set(dockerfile_values("ENV")) | mentioned
    for service in services().values():
        used |= set(service.get("environment", {}))
    tricl = {name for name in used if name.startswith("TRICL_")}
    assert tricl <= SETTINGS, f"not settings of the service: {sorted(tricl - SETTINGS)}"
    assert mentioned >= SETTINGS, f".env.example lacks {sorted(SETTINGS - mentioned)}"


def test_env_example_gives_the_defaults(monkeypatch: pytest.MonkeyPatch):
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    defaults = Settings()
    values, mentioned = env_example()
    for name, value in values.items():
        if name.startswith("TRICL_"):
            monkeypatch.setenv(name, value)
    assert Settings() == defaults
    for name, default in compose_variables().items():
        assert name in mentioned, f".env.example does not mention {name}"
        if default is not None:
            assert values[name] == default, f"{name}: compose says {default!r}"


def test_build_args_and_copied_files_exist():
    arguments = dockerfile_values("ARG")
    for name, service in services(COMPOSE_FILE, SCALE_FILE).items():
        build = service.get("build")
        if build:
            dockerfile = (ROOT / build["context"] / build["dockerfile"]).resolve()
            declared = dockerfile_values("ARG", dockerfile)
            assert set(build.get("args", {})) <= set(declared), name
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    indexer_extra = pyproject["project"]["optional-dependencies"]["indexer"]
    assert f"torch=={arguments['TORCH_VERSION']}" in indexer_extra
    kept = {
        line[1:].rstrip("/") for line in DOCKERIGNORE.read_text().splitlines() if line[:1] == "!"
    }
    for path in (DOCKERFILE, LB_DOCKERFILE):
        for keyword, copy in dockerfile_instructions(path):
            if keyword == "COPY":
                source = copy.split()[0]
                assert (ROOT / source).exists(), source
                assert source in kept, f".dockerignore leaves {source} out of the build context"
    installed = re.search(r"pip install --no-deps (\S+)", DOCKERFILE.read_text())
    assert installed, "the project itself is installed"


def test_the_service_image_carries_no_research_code():
    copied = {copy.split()[0] for keyword, copy in dockerfile_instructions(DOCKERFILE)}
    assert "bench" not in copied
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not any(d.startswith(("matplotlib", "torch")) for d in dependencies)


def test_hadolint_finds_nothing():
    hadolint = Path(sys.executable).with_name("hadolint")
    result = subprocess.run(
        [str(hadolint), "--no-color", str(DOCKERFILE), str(LB_DOCKERFILE)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
