"""The deployment's images, built in a background thread while the other tests run.

A cold build takes minutes (mostly unpacking torch); started when collection finishes and waited
for by the container tests, which run last, it overlaps the rest of the suite.
"""

import fcntl
import json
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.deploy.deployment_files import DOCKERFILE, LB_DOCKERFILE, ROOT

TAG = "test"
LOCK_FILE = Path(tempfile.gettempdir()) / "tricl-test-image-builds.lock"
# name -> (Dockerfile, build arguments). An empty TORCH_INDEX_URL lets pip in the build take torch
# from the machine's own configuration, as scripts/container-engine passes it to builds.
IMAGES = {
    "tricl-retrieval": (DOCKERFILE, ("--target=indexer", "--build-arg", "TORCH_INDEX_URL=")),
    "tricl-retrieval-service": (DOCKERFILE, ("--target=service",)),
    "tricl-retrieval-lb": (LB_DOCKERFILE, ()),
}


@dataclass
class Built:
    seconds: float
    size_bytes: int


@dataclass
class ImageBuilds:
    built: dict[str, Built] = field(default_factory=dict)
    failure: str | None = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._build_all, daemon=True)
            self._thread.start()

    def wait(self) -> dict[str, Built]:
        """The built images; raises with podman's output if a build failed."""
        self.start()
        self._thread.join()
        if self.failure:
            raise RuntimeError(self.failure)
        return self.built

    def _build_all(self) -> None:
        if not shutil.which("podman"):
            self.failure = "podman is missing: run scripts/container-engine as root"
            return
        # Every test process starts the builds; one builds while the others wait, then find
        # every layer in podman's cache.
        with open(LOCK_FILE, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._build_each()

    def _build_each(self) -> None:
        for name, (dockerfile, arguments) in IMAGES.items():
            started = time.monotonic()
            result = subprocess.run(
                [
                    "podman",
                    "build",
                    "--format=docker",  # keeps the HEALTHCHECK, which OCI images have no field for
                    f"--file={dockerfile}",
                    *arguments,
                    f"--tag={name}:{TAG}",
                    str(ROOT),
                ],
                capture_output=True,
                text=True,
                timeout=1800,
            )
            if result.returncode != 0:
                self.failure = f"podman build of {name} failed:\n{result.stdout}\n{result.stderr}"
                return
            seconds = round(time.monotonic() - started, 1)
            inspect = ["podman", "image", "inspect", f"{name}:{TAG}"]
            size = json.loads(subprocess.run(inspect, capture_output=True, text=True).stdout)
            self.built[name] = Built(seconds, size[0]["Size"])


BUILDS = ImageBuilds()
