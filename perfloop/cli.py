"""The ``perfloop`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from perfloop.broker.local import BrokerError, LocalKafka


def _broker(args: argparse.Namespace) -> LocalKafka:
    return LocalKafka(port=args.port, controller_port=args.controller_port, run_dir=args.run_dir)


def cmd_kafka(args: argparse.Namespace) -> int:
    broker = _broker(args)
    if args.action == "up":
        before = broker.status()
        status = broker.up(timeout_s=args.timeout)
        verb = "already up" if before.running else "started"
        print(f"{verb}: {status.describe()}")
        return 0
    if args.action == "down":
        stopped = broker.down()
        print("stopped" if stopped else f"not running (run folder {broker.run_dir})")
        return 0
    status = broker.status()
    print(status.describe())
    return 0 if status.running else 3


def cmd_schemas_export(args: argparse.Namespace) -> int:
    from schemas.export import export_json_schemas

    for path in export_json_schemas(args.dir):
        print(path)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from schemas.config import load_config
    from streams.worker import run_worker

    run_worker(load_config(args.config), loglevel=args.loglevel)
    return 0


def cmd_executor(args: argparse.Namespace) -> int:
    import logging

    from actions.executor import run_executor
    from schemas.config import load_config

    logging.basicConfig(level=args.loglevel.upper(), format="%(asctime)s %(name)s %(message)s")
    run_executor(load_config(args.config))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="perfloop", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    kafka = sub.add_parser("kafka", help="the local Kafka broker (KRaft, from Maven Central)")
    kafka.add_argument("action", choices=["up", "down", "status"])
    kafka.add_argument("--port", type=int, default=9092)
    kafka.add_argument("--controller-port", type=int, default=9093)
    kafka.add_argument("--run-dir", default=None, help="logs, data and pid file")
    kafka.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for ready")
    kafka.set_defaults(func=cmd_kafka)

    worker = sub.add_parser("worker", help="run every stream stage (a Faust worker)")
    worker.add_argument("--config", default=None, help="TOML file (default: PERFLOOP_CONFIG)")
    worker.add_argument("--loglevel", default="info")
    worker.set_defaults(func=cmd_worker)

    executor = sub.add_parser("executor", help="consume signed commands and apply them")
    executor.add_argument("--config", default=None, help="TOML file (default: PERFLOOP_CONFIG)")
    executor.add_argument("--loglevel", default="info")
    executor.set_defaults(func=cmd_executor)

    schemas = sub.add_parser("schemas", help="message contracts")
    schemas_sub = schemas.add_subparsers(dest="schemas_command", required=True)
    export = schemas_sub.add_parser("export", help="write one JSON Schema per message type")
    export.add_argument("dir")
    export.set_defaults(func=cmd_schemas_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (BrokerError, ValueError) as exc:
        print(f"perfloop: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
