"""``kestra-sim``: run the Kestra API simulator in the foreground until Ctrl-C (or SIGTERM)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    parser = argparse.ArgumentParser(
        prog="kestra-sim",
        description="A local SIMULATOR of the Kestra REST API for testing Airflow DAGs (not Kestra).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    parser.add_argument("--kestra-version", default="1.3", choices=("0.22", "1.3", "2.0"))
    parser.add_argument("--edition", default="OSS", choices=("OSS", "EE"))
    parser.add_argument("--username", default="admin@kestra.io")
    parser.add_argument("--password", default="Kestra-Sim-Pass1")
    parser.add_argument("--token", action="append", default=[], help="accepted API token (EE; repeatable)")
    parser.add_argument("--tenant", action="append", default=[], help="tenant (EE; repeatable; default main)")
    parser.add_argument("--seed", type=int, default=None, help="seed for fault-injection rates")
    parser.add_argument(
        "--http", default="auto", choices=("auto", "h11", "httptools"), help="uvicorn HTTP parser"
    )
    parser.add_argument(
        "--action-routes",
        default=None,
        choices=("actions", "plain"),
        help="2.x execution action layout: /executions/{id}/actions/kill (actions, the 2.0 default) or "
        "/executions/{id}/kill (plain)",
    )
    parser.add_argument(
        "--journal-size",
        type=int,
        default=100_000,
        help="requests kept in the journal read by GET /_simulator/requests (default 100000)",
    )
    parser.add_argument("--loop", default="auto", choices=("auto", "asyncio", "uvloop"), help="event loop")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Start the simulator, print a one-line banner, serve until interrupted."""
    args = build_parser().parse_args(argv)
    try:
        from airflow_provider_kestra.testing.simulator import KestraSimulator
    except ImportError as exc:
        print(
            "kestra-sim needs starlette and uvicorn: "
            f"pip install 'airflow-provider-kestra[simulator]' ({exc})",
            file=sys.stderr,
        )
        return 2
    try:
        simulator = KestraSimulator(
            kestra_version=args.kestra_version,
            edition=args.edition,
            username=args.username,
            password=args.password,
            tokens=args.token,
            tenants=args.tenant or ["main"],
            port=args.port,
            host=args.host,
            seed=args.seed,
            http=args.http,
            loop=args.loop,
            journal_size=args.journal_size,
            action_routes=args.action_routes,
        )
    except ValueError as exc:
        print(f"kestra-sim: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        simulator.start()
    except OSError as exc:
        print(f"kestra-sim: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    print(simulator.banner(), flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        simulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
