#!/usr/bin/env python3
"""Run the local stack (endpoint server + API front) as background services on 127.0.0.1.

State lives in one folder (default .run/): a PID file, a log file and a JSON record per service, so
`down` stops only what `up` started. Standard library only: it runs before any virtualenv exists.

    python3 scripts/localstack.py up --model .run/model/model.tar.gz
    python3 scripts/localstack.py status | logs | down
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Each service runs from its own virtualenv, as on AWS: the API front never has torch.
SERVICE_BINS = {"trainer": REPO / ".tox" / "trainer" / "bin", "lambda": REPO / ".tox" / "lambda" / "bin"}
ENDPOINT_NAME = "local-dogbreed"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex((host, port)) == 0


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child counts as gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        return state != "Z"
    except OSError:
        return True


def started_by_us(record: dict) -> bool:
    """The PID still runs the command we started (PIDs get reused)."""
    pid = record["pid"]
    if not process_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc: trust the PID file
    return any(record["program"].encode() in part for part in cmdline)


class Stack:
    def __init__(self, args: argparse.Namespace):
        self.run_dir = Path(args.run_dir).resolve()
        self.bins = {"endpoint": Path(args.trainer_bin).resolve(), "api": Path(args.lambda_bin).resolve()}
        self.host = args.host

    def record_path(self, name: str) -> Path:
        return self.run_dir / f"{name}.json"

    def read(self, name: str) -> dict | None:
        try:
            return json.loads(self.record_path(name).read_text())
        except (OSError, ValueError):
            return None

    def running(self, name: str) -> dict | None:
        record = self.read(name)
        return record if record and started_by_us(record) else None

    def start(self, name: str, program: str, argv: list[str], port: int, health: str, env: dict | None = None,
              timeout: float = 180.0) -> dict:
        existing = self.running(name)
        if existing:
            log(f"{name}: already running (pid {existing['pid']}, port {existing['port']})")
            return existing
        if port_in_use(self.host, port):
            raise SystemExit(f"error: {name}: port {port} on {self.host} is already in use by another program; "
                             f"pick another with the port variables (see `make help`)")
        executable = self.bins[name] / program
        if not executable.exists():
            raise SystemExit(f"error: {executable} not found: run `make stack-env` first")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.run_dir / f"{name}.log"
        with open(log_path, "ab") as log_file:
            process = subprocess.Popen([str(executable), *argv], stdout=log_file, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})},
                                       start_new_session=True)
        record = {"name": name, "pid": process.pid, "port": port, "host": self.host, "program": program,
                  "argv": argv, "log": str(log_path), "health": health, "started_at": time.time()}
        self.record_path(name).write_text(json.dumps(record, indent=2))
        (self.run_dir / f"{name}.pid").write_text(f"{process.pid}\n")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = log_path.read_text(errors="replace").splitlines()[-20:]
                self.forget(name)
                raise SystemExit(f"error: {name} exited with status {process.returncode}; last log lines:\n"
                                 + "\n".join(tail))
            if http_ok(health):
                log(f"{name}: up on http://{self.host}:{port} (pid {process.pid}, "
                    f"{time.time() - record['started_at']:.1f} s, log {log_path})")
                return record
            time.sleep(0.2)
        self.stop(name)
        raise SystemExit(f"error: {name} did not become healthy within {timeout:.0f} s; see {log_path}")

    def forget(self, name: str) -> None:
        for suffix in (".json", ".pid"):
            (self.run_dir / f"{name}{suffix}").unlink(missing_ok=True)

    def stop(self, name: str, grace: float = 15.0) -> None:
        record = self.read(name)
        if record is None:
            return
        if started_by_us(record):
            pid = record["pid"]
            os.killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while process_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if process_alive(pid):
                os.killpg(pid, signal.SIGKILL)
            log(f"{name}: stopped (pid {pid})")
        else:
            log(f"{name}: not running (stale record removed)")
        self.forget(name)


SERVICES = ("endpoint", "api")


def cmd_up(stack: Stack, args: argparse.Namespace) -> None:
    model = Path(args.model).resolve()
    if not model.exists():
        raise SystemExit(f"error: model artifact {model} not found: run `make model` first")
    endpoint_url = f"http://{stack.host}:{args.endpoint_port}"
    stack.start("endpoint", "dogbreed",
                ["serve", "--model", str(model), "--host", stack.host, "--port", str(args.endpoint_port)],
                args.endpoint_port, f"{endpoint_url}/ping")
    stack.start("api", "dogapi-local",
                ["--host", stack.host, "--port", str(args.api_port), "--endpoint-url", endpoint_url,
                 "--endpoint-name", ENDPOINT_NAME],
                args.api_port, f"http://{stack.host}:{args.api_port}/health")
    print(f"Web page: http://{stack.host}:{args.api_port}/   (open it in a browser: photo in, breeds out)")
    print(f"API:      http://{stack.host}:{args.api_port}   (POST /predict, GET /health, GET /openapi.json)")
    print(f"Endpoint: {endpoint_url}   (GET /ping, POST /invocations)")


def cmd_down(stack: Stack, args: argparse.Namespace) -> None:
    for name in reversed(SERVICES):
        stack.stop(name)


def cmd_restart_endpoint(stack: Stack, args: argparse.Namespace) -> None:
    stack.stop("endpoint")
    cmd_up(stack, args)


def cmd_status(stack: Stack, args: argparse.Namespace) -> None:
    all_up = True
    for name in SERVICES:
        record = stack.running(name)
        if record is None:
            print(f"{name:9} stopped")
            all_up = False
            continue
        healthy = http_ok(record["health"])
        all_up &= healthy
        print(f"{name:9} running  pid {record['pid']:<7} http://{record['host']}:{record['port']}  "
              f"{'healthy' if healthy else 'NOT healthy'}  log {record['log']}")
    sys.exit(0 if all_up else 1)


def cmd_logs(stack: Stack, args: argparse.Namespace) -> None:
    for name in SERVICES:
        path = stack.run_dir / f"{name}.log"
        print(f"==> {path} <==")
        if path.exists():
            print("\n".join(path.read_text(errors="replace").splitlines()[-args.lines:]))
        print()


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down", "status", "logs", "restart-endpoint"])
    parser.add_argument("--run-dir", default=os.environ.get("RUN_DIR", str(REPO / ".run")),
                        help="folder for PID, log and record files (default: .run/)")
    parser.add_argument("--trainer-bin", default=str(SERVICE_BINS["trainer"]),
                        help="virtualenv bin folder with `dogbreed` (default: .tox/trainer/bin)")
    parser.add_argument("--lambda-bin", default=str(SERVICE_BINS["lambda"]),
                        help="virtualenv bin folder with `dogapi-local` (default: .tox/lambda/bin)")
    parser.add_argument("--model", default=str(REPO / ".run" / "model" / "model.tar.gz"),
                        help="model artifact to serve (default: .run/model/model.tar.gz)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--endpoint-port", type=int, default=8080, help="endpoint server port (default: 8080)")
    parser.add_argument("--api-port", type=int, default=3000, help="API front port (default: 3000)")
    parser.add_argument("--lines", type=int, default=50, help="log lines shown by `logs` (default: 50)")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    stack = Stack(args)
    {"up": cmd_up, "down": cmd_down, "status": cmd_status, "logs": cmd_logs,
     "restart-endpoint": cmd_restart_endpoint}[args.command](stack, args)


if __name__ == "__main__":
    main()
