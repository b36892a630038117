"""Real processes of the service for tests: `beatmachine serve` and `beatmachine worker`
started with a test's settings, waited for, stopped or killed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import httpx
import pytest

from beatmachine.core.config import Settings

START_SECONDS = 30.0
STOP_SECONDS = 20.0
# The settings a process of a test needs, by environment variable.
PASSED_ON = (
    "DATABASE_URL",
    "REDIS_URL",
    "REDIS_KEY_PREFIX",
    "VAR_DIR",
    "JWT_SECRET",
    "ARGON2_TIME_COST",
    "ARGON2_MEMORY_COST",
    "INSTALL_DEFAULT_MACHINES",
    "APP_URL",
    "SMTP_URL",
    "JOB_RETRIES",
    "JOB_RETRY_BASE_DELAY",
    "JOB_RETRY_MAX_DELAY",
    "JOB_REDELIVERY_TIMEOUT",
    "RATE_LIMIT_ENABLED",
)


def process_env(settings: Settings, **overrides: Any) -> dict[str, str]:
    """The environment of a process with `settings` (and `overrides`, by variable name)."""
    values = settings.model_dump(by_alias=True)
    env = {name: str(value) for name, value in values.items() if name in PASSED_ON}
    env.update({name: str(value) for name, value in overrides.items()})
    env["DATABASE_URL"] = settings.effective_database_url
    env.update(
        {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", ""),
            "LOG_JSON": "true",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


class ServiceProcess:
    """One process of the service; its output goes to a file, read back on failure."""

    def __init__(
        self, args: list[str], env: dict[str, str], name: str, module: str = "beatmachine.cli"
    ) -> None:
        self.name = name
        self._log: TextIO = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed in stop)
            "w+", prefix=f"bm-{name}-", suffix=".log", delete=False
        )
        self.log_path = Path(self._log.name)
        self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [sys.executable, "-m", module, *args],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    async def wait_for_output(self, text: str, within: float = START_SECONDS) -> None:
        """Until the process printed `text`; fails the test (with its output) otherwise."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while text not in self.output():
            if not self.alive():
                pytest.fail(f"{self.name} exited ({self.process.returncode}):\n{self.output()}")
            if loop.time() > deadline:
                pytest.fail(f"{self.name} did not print {text!r} in {within} s:\n{self.output()}")
            await asyncio.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown work at all, as when the machine loses power."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(STOP_SECONDS)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a deadline (its output stays readable)."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.kill()

    def close(self) -> None:
        """Stop it, and remove its output."""
        self.stop()
        self._log.close()
        self.log_path.unlink(missing_ok=True)


class Processes:
    """The processes a test started; all are stopped when it ends."""

    def __init__(self) -> None:
        self.started: list[ServiceProcess] = []

    def worker(
        self, env: dict[str, str], name: str = "worker", processes: int = 1
    ) -> ServiceProcess:
        """`beatmachine worker --processes N` with `env`."""
        return self._keep(ServiceProcess(["worker", "--processes", str(processes)], env, name))

    def server(self, env: dict[str, str], port: int, name: str = "server") -> ServiceProcess:
        """`beatmachine serve` on 127.0.0.1:`port` with `env` (the database is migrated)."""
        args = ["serve", "--no-migrate", "--host", "127.0.0.1", "--port", str(port)]
        return self._keep(ServiceProcess(args, env, name))

    def script(self, module: str, env: dict[str, str], *args: str) -> ServiceProcess:
        """`python -m module args` with `env` (a test's own process)."""
        return self._keep(ServiceProcess([*args], env, module, module=module))

    def _keep(self, process: ServiceProcess) -> ServiceProcess:
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.started:
            process.close()


@pytest.fixture
def processes() -> Iterator[Processes]:
    """Start real processes of the service; each is stopped after the test."""
    started = Processes()
    try:
        yield started
    finally:
        started.stop_all()


async def wait_until_serving(server: ServiceProcess, base_url: str) -> None:
    """Until `GET /healthz` answers 200."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_SECONDS
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as client:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/healthz")).status_code == 200:
                    return
            if not server.alive():
                pytest.fail(f"{server.name} exited:\n{server.output()}")
            if loop.time() > deadline:
                pytest.fail(f"{server.name} is not serving after {START_SECONDS} s")
            await asyncio.sleep(0.1)
