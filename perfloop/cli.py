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
        stopped = broker.down(timeout_s=args.timeout)
        if stopped is None:
            print(f"not running (run folder {broker.run_dir})")
        elif stopped == "killed":
            print(f"stopped: killed after {args.timeout:g} s without a clean shutdown "
                  "(its next start recovers every log; --timeout waits longer)")  # fmt: skip
        else:
            print("stopped")
        return 0
    status = broker.status()
    print(status.describe())
    return 0 if status.running else 3


def cmd_schemas_export(args: argparse.Namespace) -> int:
    from perfloop.schemas.export import export_json_schemas

    for path in export_json_schemas(args.dir):
        print(path)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from perfloop.schemas.config import load_config
    from perfloop.streams.kafka.worker import run_worker

    run_worker(load_config(args.config), loglevel=args.loglevel)
    return 0


def cmd_executor(args: argparse.Namespace) -> int:
    import logging

    from perfloop.actions.executor import run_executor
    from perfloop.schemas.config import load_config

    logging.basicConfig(level=args.loglevel.upper(), format="%(asctime)s %(name)s %(message)s")
    run_executor(load_config(args.config))
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    from perfloop.schemas.config import load_config

    if args.group is not None:
        from perfloop.group_health import member_here

        ok, line = member_here(load_config(args.config).broker.bootstrap, args.group, args.timeout)
    else:
        from perfloop.health import check

        port = args.port if args.port is not None else load_config(args.config).worker.http_port
        ok, line = check(port, ready=args.ready, host=args.host, timeout_s=args.timeout)
    print(f"{'ok' if ok else 'failing'}: {line}")
    return 0 if ok else 1


def _kafka_tool(run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a Kafka tool command; a Kafka error becomes a one-line message and exit code 2."""
    from perfloop.actions.kafka_clients import KafkaError

    try:
        return run(args)
    except KafkaError as exc:
        print(f"perfloop {args.command}: Kafka: {exc}", file=sys.stderr)
        return 2


def cmd_record(args: argparse.Namespace) -> int:
    from perfloop.record import run

    return _kafka_tool(run, args)


def cmd_replay(args: argparse.Namespace) -> int:
    from perfloop.replay import run

    return _kafka_tool(run, args)


def cmd_produce(args: argparse.Namespace) -> int:
    from perfloop.produce import run

    return _kafka_tool(run, args)


def cmd_tail(args: argparse.Namespace) -> int:
    from perfloop.tail import run

    return _kafka_tool(run, args)


def cmd_simulate(args: argparse.Namespace) -> int:
    from perfloop.simulator.runner import main as simulate

    return _kafka_tool(simulate, args)


def cmd_demo(args: argparse.Namespace) -> int:
    from perfloop.demo import run_demo

    return run_demo(args.config, args.scenario, args.timeout)


def _add_tool_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``record``, ``replay``, ``produce`` and ``tail``: the tools for topics and metrics."""
    broker = argparse.ArgumentParser(add_help=False)
    broker.add_argument("--broker", default=None, help="bootstrap (default: PERFLOOP_BROKER)")

    record = sub.add_parser("record", parents=[broker], help="record topics to a file")
    record.add_argument("topics", nargs="+", metavar="TOPIC")
    record.add_argument("-o", "--output", required=True, help="gzip JSON Lines file")
    record.add_argument(
        "--from", dest="start", default="earliest",
        help="earliest (default), latest, an ISO time (UTC without zone) or epoch seconds",
    )  # fmt: skip
    record.add_argument("--max-messages", type=int, default=None)
    record.add_argument("--until-end", action="store_true", help="stop at the end offsets now")
    record.add_argument("--idle-timeout", type=float, default=None, metavar="S")
    record.add_argument("--quiet", action="store_true", help="no progress line")
    record.set_defaults(func=cmd_record)

    replay = sub.add_parser("replay", parents=[broker], help="produce a recording back")
    replay.add_argument("file")
    replay.add_argument("--map", action="append", metavar="SOURCE=TARGET", help="rename")
    replay.add_argument(
        "--keep-partitions", action=argparse.BooleanOptionalAction, default=None,
        help="default: kept when the target has enough partitions, else by key",
    )  # fmt: skip
    replay.add_argument("--speed", default="1", help="1 = real time (default), 60, or max")
    shift = replay.add_mutually_exclusive_group()
    shift.add_argument("--shift", type=float, default=0.0, metavar="S", help="move timestamps")
    shift.add_argument("--shift-to-now", action="store_true", help="first message lands now")
    replay.add_argument("--shift-values", action="store_true", help="move ts in metric values")
    replay.add_argument("--on-error", choices=["fail", "skip"], default="fail")
    replay.add_argument("--create-topics", action="store_true", help="create missing targets")
    replay.add_argument("--quiet", action="store_true", help="no progress line")
    replay.set_defaults(func=cmd_replay)

    produce = sub.add_parser("produce", parents=[broker], help="send metric points in batches")
    produce.add_argument("file", nargs="?", default="-", help="JSON Lines of points; - stdin")
    produce.add_argument("--topic", default=None, help="default: the configured metrics topic")
    produce.add_argument("--batch-size", type=int, default=500, help="points per batch")
    produce.add_argument("--linger", type=float, default=1.0, metavar="S", help="max wait")
    produce.add_argument("--allow-bad", action="store_true", help="exit 0 despite bad lines")
    produce.set_defaults(func=cmd_produce)

    tail = sub.add_parser("tail", parents=[broker], help="print a topic's messages")
    tail.add_argument("topic")
    tail.add_argument(
        "--from", dest="start", default=None,
        help="earliest, latest, an ISO time or epoch seconds (default: latest when following)",
    )  # fmt: skip
    tail.add_argument("--max", type=int, default=None, metavar="N")
    tail.add_argument("--follow", action=argparse.BooleanOptionalAction, default=True)
    tail.add_argument("--json", action="store_true", help="raw values, one per line")
    tail.set_defaults(func=cmd_tail)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="perfloop", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    kafka = sub.add_parser("kafka", help="the local Kafka broker (KRaft, from Maven Central)")
    kafka.add_argument("action", choices=["up", "down", "status"])
    kafka.add_argument("--port", type=int, default=9092)
    kafka.add_argument("--controller-port", type=int, default=9093)
    kafka.add_argument("--run-dir", default=None, help="logs, data and pid file")
    kafka.add_argument(
        "--timeout", type=float, default=90.0,
        help="seconds to wait: for ready (up), for a clean shutdown before SIGKILL (down)",
    )  # fmt: skip
    kafka.set_defaults(func=cmd_kafka)

    worker = sub.add_parser("worker", help="run every stream stage (a Faust worker)")
    worker.add_argument("--config", default=None, help="TOML file (default: PERFLOOP_CONFIG)")
    worker.add_argument("--loglevel", default="info")
    worker.set_defaults(func=cmd_worker)

    executor = sub.add_parser("executor", help="consume signed commands and apply them")
    executor.add_argument("--config", default=None, help="TOML file (default: PERFLOOP_CONFIG)")
    executor.add_argument("--loglevel", default="info")
    executor.set_defaults(func=cmd_executor)

    health = sub.add_parser("health", help="ask a worker or executor's health endpoint")
    health.add_argument("--port", type=int, default=None, help="default: worker.http_port")
    health.add_argument("--host", default="127.0.0.1")
    health.add_argument("--ready", action="store_true", help="/readyz instead of /healthz")
    health.add_argument(
        "--group", default=None,
        help="instead: is an executor of this host a member of this consumer group",
    )  # fmt: skip
    health.add_argument("--timeout", type=float, default=3.0, metavar="S")
    health.add_argument("--config", default=None, help="TOML file (default: PERFLOOP_CONFIG)")
    health.set_defaults(func=cmd_health)

    schemas = sub.add_parser("schemas", help="message contracts")
    schemas_sub = schemas.add_subparsers(dest="schemas_command", required=True)
    export = schemas_sub.add_parser("export", help="write one JSON Schema per message type")
    export.add_argument("dir")
    export.set_defaults(func=cmd_schemas_export)
    _add_tool_parsers(sub)

    simulate = sub.add_parser("simulate", help="simulated services with injected faults")
    simulate.add_argument("--scenario", default=None, help="TOML file (default: one healthy api)")
    simulate.add_argument("--seed", type=int, default=None, help="default: the scenario's")
    simulate.add_argument("--duration", type=float, default=None, metavar="S", help="wall s")
    simulate.add_argument("--rate", type=float, default=None, help="points/s per metric")
    simulate.add_argument("--speed", type=float, default=None, help="simulated s per wall s")
    simulate.add_argument("--config", default=None, help="TOML file (default: PERFLOOP_CONFIG)")
    executor_flag = simulate.add_mutually_exclusive_group()
    executor_flag.add_argument(
        "--with-executor", dest="executor", action="store_true", default=True,
        help="apply commands to the simulation with an embedded executor (default)",
    )  # fmt: skip
    executor_flag.add_argument("--no-executor", dest="executor", action="store_false")
    simulate.set_defaults(func=cmd_simulate)

    demo = sub.add_parser("demo", help="the whole loop on a simulation, with a live timeline")
    demo.add_argument("--scenario", default=None, help="TOML file (default: all five areas)")
    demo.add_argument("--config", default=None, help="TOML file (default: PERFLOOP_CONFIG)")
    demo.add_argument("--timeout", type=float, default=300.0, help="wall seconds at most")
    demo.set_defaults(func=cmd_demo)
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
