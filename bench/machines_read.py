"""Throughput and latency of machine reads, measured against /healthz in the same run.

Imports the front end's real ``salsa.xml`` (``beatmachine import-machine``) into a fresh
PostgreSQL database, starts the real server (``beatmachine serve``) with a private Redis
key prefix, then puts a closed-loop load of N concurrent keep-alive connections on each of

    GET /healthz                    the baseline: the HTTP and middleware stack, no I/O
    GET /api/machines/salsa         the JSON document, uncompressed (the 70 % target)
    GET /api/machines/salsa         the same, as a browser asks for it (br), and gzip
    GET /api/machines/salsa         If-None-Match with its ETag: the 304 path
    GET /api/machines/salsa.xml     the front end's XML

and reports requests/s, p50 and p99 latency, errors, and each throughput as a ratio to
/healthz, with PASS or FAIL for the target. The load comes from ``wrk`` (when on PATH) or
httpx processes, never from the server's process. Everything it creates (server,
database, Redis keys) is removed at the end, also on failure or Ctrl-C. See
bench/README.md.

    .venv/bin/python bench/machines_read.py [--duration 10] [--workers 1] [--tool httpx]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from _harness import (
    BENCH_DIR,
    REPO_DIR,
    Environment,
    LoadOptions,
    Measurement,
    Scenario,
    Server,
    Tool,
    client_bound,
    console,
    default_tool,
    environment,
    git_commit,
    machine_info,
    measure,
    phase,
    result_stamp,
    run_benchmark,
    save_results,
    service_parser,
    warn_if_busy,
)
from defusedxml.ElementTree import fromstring
from rich.table import Table

MACHINE_ID = "salsa"
DEFAULT_XML = REPO_DIR.parent / "shared" / "data" / "machines" / "salsa.xml"
BM_NS = "{http://www.salsabeatmachine.org/xns/bm}"
TARGET_KEY = "json"  # the scenario the target applies to
BROWSER_ENCODING = "gzip, deflate, br"  # what browsers send
SCENARIO_KEYS = ("healthz", "json", "json-br", "json-gzip", "json-304", "xml")


@dataclass(frozen=True)
class Options:
    admin_url: str
    redis_url: str
    machine_xml: Path
    workers: int
    concurrency: int
    duration: float
    warmup: float
    rounds: int
    tool: Tool
    client_procs: int
    scenarios: tuple[str, ...]
    target: float
    check: bool
    py_spy: float
    results_dir: Path

    @property
    def load(self) -> LoadOptions:
        return LoadOptions(
            tool=self.tool,
            concurrency=self.concurrency,
            duration=self.duration,
            warmup=self.warmup,
            client_procs=self.client_procs,
        )


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = service_parser(__doc__)
    parser.add_argument(
        "--machine-xml",
        type=Path,
        default=DEFAULT_XML,
        help="the front end's machine file imported as 'salsa'",
    )
    parser.add_argument("--workers", type=int, default=1, help="server processes (WORKERS)")
    parser.add_argument("--concurrency", type=int, default=32, help="open connections")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured each")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure every scenario this many times, interleaved; the table shows the "
        "round with the median requests/s of each",
    )
    parser.add_argument(
        "--tool",
        choices=["httpx", "wrk"],
        default=default_tool(),
        help="load generator: wrk from PATH, or httpx in Python processes",
    )
    parser.add_argument(
        "--client-procs", type=int, default=1, help="load-generator processes (httpx tool)"
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIO_KEYS),
        help=f"comma-separated subset of {', '.join(SCENARIO_KEYS)} (healthz always runs)",
    )
    parser.add_argument(
        "--target",
        type=float,
        default=0.70,
        help="the JSON endpoint's throughput must be at least this fraction of /healthz's",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit with status 2 when the target is missed"
    )
    parser.add_argument(
        "--py-spy",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="after the table, profile the server with py-spy (must be installed) for this "
        "many seconds under the JSON load; 0 = off",
    )
    parser.add_argument(
        "--results-dir", type=Path, default=BENCH_DIR / "results", help="where the JSON goes"
    )
    args = parser.parse_args(argv)
    if args.tool == "wrk" and shutil.which("wrk") is None:
        parser.error("--tool wrk: wrk is not on PATH (apt-get install wrk)")
    if min(args.workers, args.concurrency, args.client_procs, args.rounds) < 1:
        parser.error("--workers, --concurrency, --client-procs and --rounds must be >= 1")
    if args.duration <= 0 or args.warmup < 0:
        parser.error("--duration must be > 0 and --warmup >= 0")
    wanted = [key.strip() for key in args.scenarios.split(",") if key.strip()]
    unknown = sorted(set(wanted) - set(SCENARIO_KEYS))
    if unknown:
        parser.error(f"--scenarios: unknown {', '.join(unknown)}")
    scenarios = tuple(key for key in SCENARIO_KEYS if key == "healthz" or key in wanted)
    if args.py_spy and find_py_spy() is None:
        parser.error(
            "--py-spy: py-spy is not installed (into the venv, not the project: "
            "uv pip install --python .venv/bin/python py-spy)"
        )
    return Options(
        admin_url=args.admin_url,
        redis_url=args.redis_url,
        machine_xml=args.machine_xml.resolve(),
        workers=args.workers,
        concurrency=args.concurrency,
        duration=args.duration,
        warmup=args.warmup,
        rounds=args.rounds,
        tool=args.tool,
        client_procs=args.client_procs,
        scenarios=scenarios,
        target=args.target,
        check=args.check,
        py_spy=args.py_spy,
        results_dir=args.results_dir,
    )


# --- the machine file and its check ----------------------------------------------------------


@dataclass(frozen=True)
class FileCounts:
    """What the XML file holds, counted here without the server's parser."""

    instruments: int
    programs: int
    notes: int


def count_machine_file(path: Path) -> FileCounts:
    if not path.is_file():
        raise SystemExit(
            f"machine file not found: {path}\n"
            "The front end's files are expected in ../shared/data/machines/ beside the "
            "repository; pass --machine-xml PATH."
        )
    root = fromstring(path.read_bytes())
    instrument_list = root.find(f"{BM_NS}instrumentList")
    if instrument_list is None:
        raise SystemExit(f"{path}: no bm:instrumentList, not a machine file")
    return FileCounts(
        instruments=len(list(instrument_list)),
        programs=len(root.findall(f".//{BM_NS}Program")),
        notes=len(root.findall(f".//{BM_NS}Note")),
    )


def scenarios_for(etag: str, keys: Sequence[str]) -> list[Scenario]:
    path = f"/api/machines/{MACHINE_ID}"
    plain = {"Accept": "application/json", "Accept-Encoding": "identity"}
    every = {
        "healthz": Scenario.make("healthz", "GET", "/healthz", [plain], note="baseline"),
        "json": Scenario.make("json", "GET", path, [plain], note="JSON, identity"),
        "json-br": Scenario.make(
            "json-br",
            "GET",
            path,
            [{"Accept": "application/json", "Accept-Encoding": BROWSER_ENCODING}],
            note="JSON, br (a browser)",
        ),
        "json-gzip": Scenario.make(
            "json-gzip",
            "GET",
            path,
            [{"Accept": "application/json", "Accept-Encoding": "gzip"}],
            note="JSON, gzip",
        ),
        "json-304": Scenario.make(
            "json-304",
            "GET",
            path,
            [
                {
                    "Accept": "application/json",
                    "Accept-Encoding": BROWSER_ENCODING,
                    "If-None-Match": etag,
                }
            ],
            expect=304,
            note="If-None-Match: 304",
        ),
        "xml": Scenario.make(
            "xml",
            "GET",
            f"{path}.xml",
            [{"Accept": "application/xml", "Accept-Encoding": "identity"}],
            note="XML, identity",
        ),
    }
    return [every[key] for key in keys]


def check_answers(server: Server, counts: FileCounts) -> str:
    """One request of each kind, checked, so that a broken set-up fails here and not as a
    column of errors; returns the ETag of the JSON document."""
    path = f"/api/machines/{MACHINE_ID}"
    with httpx.Client(base_url=server.base_url, timeout=30.0) as client:

        def get(url: str, **headers: str) -> httpx.Response:
            response = client.get(url, headers=headers)
            if response.status_code not in (200, 304):
                raise RuntimeError(f"GET {url}: {response.status_code} {response.text[:500]}")
            return response

        listing = get("/api/machines").json()["data"]["machines"]
        if [m["id"] for m in listing] != [MACHINE_ID]:
            raise RuntimeError(f"expected only {MACHINE_ID!r} in /api/machines, got {listing}")
        plain = get(path, **{"Accept-Encoding": "identity"})
        data = plain.json()["data"]
        instruments = data["instruments"]
        served = FileCounts(
            instruments=len(instruments),
            programs=sum(len(i["programs"]) for i in instruments),
            notes=sum(len(p["notes"]) for i in instruments for p in i["programs"]),
        )
        if served != counts:
            raise RuntimeError(f"the server's {MACHINE_ID} is not the file: {served} != {counts}")
        etag = plain.headers["etag"]
        for encoding, expected in ((BROWSER_ENCODING, "br"), ("gzip", "gzip")):
            coded = get(path, **{"Accept-Encoding": encoding})
            if coded.headers.get("content-encoding") != expected:
                raise RuntimeError(f"Accept-Encoding {encoding!r} was not answered with {expected}")
        revalidated = get(path, **{"If-None-Match": etag, "Accept-Encoding": BROWSER_ENCODING})
        if revalidated.status_code != 304:
            raise RuntimeError(f"If-None-Match {etag}: {revalidated.status_code}, not 304")
        xml = get(f"{path}.xml", **{"Accept-Encoding": "identity"})
        if not xml.headers["content-type"].startswith("application/xml"):
            raise RuntimeError(f"{path}.xml answered {xml.headers['content-type']}")
    return str(etag)


# --- profiling (optional) ------------------------------------------------------------------


def find_py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.is_file() else shutil.which("py-spy")


def profile(options: Options, env: Environment, server: Server, scenario: Scenario) -> Path:
    """Run the scenario's load again while py-spy samples the server (the load is not
    measured); writes collapsed stacks (flamegraph.pl / speedscope input)."""
    py_spy = find_py_spy()
    assert py_spy is not None
    stamp = result_stamp()
    options.results_dir.mkdir(parents=True, exist_ok=True)
    out = options.results_dir / f"machines_read-{scenario.key}-{stamp}.collapsed.txt"
    recorder = subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(server.process.pid),
            "--subprocesses",
            "--duration",
            str(max(1, round(options.py_spy))),
            "--rate",
            "200",
            "--format",
            "raw",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        load = LoadOptions(
            tool=options.tool,
            concurrency=options.concurrency,
            duration=options.py_spy + 1.0,
            warmup=0.0,
            client_procs=options.client_procs,
        )
        measure(load, server, scenario, env.workdir)
        _, stderr = recorder.communicate(timeout=60)
    finally:
        if recorder.poll() is None:
            recorder.terminate()
            recorder.wait(timeout=10)
    if recorder.returncode != 0:
        raise RuntimeError(f"py-spy failed: {stderr.decode(errors='replace')[-1000:]}")
    return out


# --- results ---------------------------------------------------------------------------------


def median_round(rounds: list[Measurement]) -> Measurement:
    """The round with the median requests/s (the lower middle one of an even count)."""
    ordered = sorted(rounds, key=lambda m: m.rps)
    return ordered[(len(ordered) - 1) // 2]


def verdict(options: Options, key: str, ratio: float) -> str:
    if key != TARGET_KEY:
        return "-"
    return "PASS" if ratio >= options.target else "FAIL"


def render(options: Options, scenarios: list[Scenario], chosen: dict[str, Measurement]) -> Table:
    base = chosen["healthz"]
    table = Table(
        title=(
            f"{MACHINE_ID} read path: concurrency {options.concurrency}, "
            f"{options.duration:g}s each"
            + (f" (median of {options.rounds} rounds)" if options.rounds > 1 else "")
            + f", {options.workers} server worker(s), {options.tool}"
        )
    )
    for header in (
        "scenario",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "body B",
        "ratio",
        f"≥{options.target:.0%}",
        "CPU µs/req",
        "CPU ratio",
        "server CPU",
        "client CPU",
    ):
        table.add_column(header, justify="left" if header == "scenario" else "right")
    for scenario in scenarios:
        m = chosen[scenario.key]
        ratio = m.rps / base.rps if base.rps else 0.0
        mark = verdict(options, scenario.key, ratio)
        table.add_row(
            scenario.key,
            f"{m.rps:,.0f}",
            f"{m.p50_ms:,.2f}",
            f"{m.p99_ms:,.2f}",
            f"[red]{m.errors}[/red]" if m.errors else "0",
            f"{m.body_bytes:,.0f}",
            f"{ratio:.2f}",
            {"PASS": "[green]PASS[/green]", "FAIL": "[red]FAIL[/red]"}.get(mark, mark),
            f"{m.server_cpu_us:,.0f}",
            f"{base.server_cpu_us / m.server_cpu_us:.2f}" if m.server_cpu_us else "-",
            f"{m.server_cpu_pct:.0f}%",
            f"{m.client_cpu_pct:.0f}%",
        )
    return table


def write_results(
    options: Options,
    scenarios: list[Scenario],
    rounds: dict[str, list[Measurement]],
    counts: FileCounts,
    etag: str,
    machine: dict[str, Any],
) -> Path:
    chosen = {key: median_round(ms) for key, ms in rounds.items()}
    base = chosen["healthz"]
    stamp = result_stamp()
    target_ratio = chosen[TARGET_KEY].rps / base.rps if TARGET_KEY in chosen else None
    document = {
        "benchmark": "machines_read",
        "finished_at": stamp,
        "git_commit": git_commit(),
        "machine": machine,
        "options": {
            **{
                k: v
                for k, v in asdict(options).items()
                if k not in ("admin_url", "results_dir", "machine_xml")
            },
            "machine_xml": str(options.machine_xml),
        },
        "machine_file": asdict(counts),
        "etag": etag,
        "target": {
            "scenario": TARGET_KEY,
            "min_ratio": options.target,
            "ratio": target_ratio,
            "verdict": None if target_ratio is None else verdict(options, TARGET_KEY, target_ratio),
        },
        "scenarios": {
            scenario.key: {
                "method": scenario.method,
                "path": scenario.path,
                "note": scenario.note,
                "headers": dict(scenario.variants[0][0]),
                **chosen[scenario.key].as_dict(),
                "rps_ratio_to_healthz": chosen[scenario.key].rps / base.rps,
                "p50_ratio_to_healthz": chosen[scenario.key].p50_ms / base.p50_ms,
                "cpu_ratio_to_healthz": base.server_cpu_us / chosen[scenario.key].server_cpu_us,
                "rounds": [m.as_dict() for m in rounds[scenario.key]],
            }
            for scenario in scenarios
        },
    }
    return save_results(options.results_dir, "machines_read", stamp, document)


# --- the run ---------------------------------------------------------------------------------


def run(options: Options) -> int:
    counts = count_machine_file(options.machine_xml)
    try:
        with environment(options.admin_url, options.redis_url, "bench_machines") as env:
            server_env = env.server_env(options.workers, INSTALL_DEFAULT_MACHINES="false")
            with phase(f"importing {options.machine_xml.name} as {MACHINE_ID!r}"):
                output = env.cli(
                    server_env,
                    "import-machine",
                    str(options.machine_xml),
                    "--id",
                    MACHINE_ID,
                )
            console.print(f"[dim]{output.splitlines()[-1] if output else ''}[/dim]")
            with phase(f"starting the server ({options.workers} worker(s))"):
                server = env.start_server(server_env, options.workers)
            etag = check_answers(server, counts)
            scenarios = scenarios_for(etag, options.scenarios)
            load_before = warn_if_busy()
            rounds: dict[str, list[Measurement]] = {s.key: [] for s in scenarios}
            for number in range(1, options.rounds + 1):
                for scenario in scenarios:
                    what = f"{scenario.label} ({scenario.note})"
                    if options.rounds > 1:
                        what = f"round {number}/{options.rounds}: {what}"
                    with phase(f"{what}: {options.warmup:g}s warm-up + {options.duration:g}s"):
                        rounds[scenario.key].append(
                            measure(options.load, server, scenario, env.workdir)
                        )
            machine = machine_info(load_before, os.getloadavg())
            chosen = {key: median_round(ms) for key, ms in rounds.items()}
            for scenario in scenarios:
                headers = "; ".join(f"{k}: {v}" for k, v in scenario.variants[0][0])
                console.print(f"[dim]{scenario.key:9} {scenario.label}  ({headers})[/dim]")
            console.print(render(options, scenarios, chosen))
            path = write_results(options, scenarios, rounds, counts, etag, machine)
            console.print(f"results: {path}")
            return report(options, scenarios, chosen, env, server)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; cleaned up[/yellow]")
        return 130
    except Exception as exc:
        console.print(f"[red]benchmark failed: {exc}[/red]")
        return 1


def report(
    options: Options,
    scenarios: list[Scenario],
    chosen: dict[str, Measurement],
    env: Environment,
    server: Server,
) -> int:
    """The notes under the table; the exit status."""
    base = chosen["healthz"]
    if client_bound(options.load, base, options.workers):
        console.print(
            "[yellow]the load generator, not the server, set the pace of /healthz (server "
            f"{base.server_cpu_pct:.0f}% CPU, client {base.client_cpu_pct:.0f}%): the "
            "baseline is understated and the ratios overstated. Use --tool wrk or more "
            "--client-procs.[/yellow]"
        )
    failed = [s.key for s in scenarios if chosen[s.key].errors]
    if failed:
        console.print(f"[red]errors in {', '.join(failed)}: the run is invalid[/red]")
    code = 1 if failed else 0
    if TARGET_KEY in chosen:
        ratio = chosen[TARGET_KEY].rps / base.rps
        mark = verdict(options, TARGET_KEY, ratio)
        colour = "green" if mark == "PASS" else "red"
        console.print(
            f"[{colour}]GET /api/machines/{MACHINE_ID} (JSON): {ratio:.0%} of /healthz's "
            f"throughput, target ≥ {options.target:.0%}: {mark}[/{colour}]"
        )
        if mark == "FAIL" and options.check and not code:
            code = 2
    if options.py_spy:
        target = next(
            s for s in scenarios if s.key == (TARGET_KEY if TARGET_KEY in chosen else "healthz")
        )
        with phase(f"profiling {target.label} ({target.note}) with py-spy, {options.py_spy:g}s"):
            path = profile(options, env, server, target)
        console.print(f"profile (collapsed stacks): {path}")
    return code


def main() -> None:
    run_benchmark(parse_options, run)


if __name__ == "__main__":
    main()
