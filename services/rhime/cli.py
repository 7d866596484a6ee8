"""`rhime`: serve one component, or run the whole platform locally."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import ValidationError

from rhime import catalogue
from rhime.kit import logs
from rhime.kit.settings import Settings


def _settings_error(exc: ValidationError, settings_type: type[Settings]) -> str:
    prefix = settings_type.model_config.get("env_prefix", "")
    lines = []
    for error in exc.errors():
        name = (prefix + "_".join(str(p) for p in error["loc"])).upper()
        lines.append(f"  {name}: {error['msg']}")
    return "configuration error:\n" + "\n".join(lines)


def load_settings(component: catalogue.Component) -> tuple[Callable[..., Any], Settings]:
    """Settings for `component` from the environment; exits with a clear message if wrong."""
    function, settings_type = component.load()
    os.environ.setdefault("RHIME_COMPONENT", component.name)
    if component.port:
        os.environ.setdefault("RHIME_PORT", str(component.port))
    try:
        settings = settings_type()
    except ValidationError as exc:
        print(_settings_error(exc, settings_type), file=sys.stderr)
        raise SystemExit(2) from None
    return function, settings


# Idle keep-alive connections are kept longer than any client keeps them (the gateway's pool
# 60 s, aiohttp's default 15 s, common load balancers 60 s): a server closing a connection the
# client is about to reuse fails that request, and clients retry only idempotent ones.
KEEP_ALIVE_SECONDS = 75


def server_config(app: Any, settings: Settings) -> Any:
    """How every HTTP component is served (a `uvicorn.Config`)."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) + 1,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        # The peer stays the peer: the gateway alone decides whom X-Forwarded-For is believed
        # from (`trusted_proxies`); uvicorn would believe it from any loopback peer.
        proxy_headers=False,
        server_header=False,
        loop="uvloop",
    )


def serve(name: str) -> int:
    try:
        component = catalogue.get(name)
    except KeyError as exc:
        print(exc.args[0], file=sys.stderr)
        return 2
    function, settings = load_settings(component)
    logs.configure(component=component.name, level=settings.log_level, json=settings.log_json)
    if component.kind in (catalogue.Kind.HTTP, catalogue.Kind.WORKER):
        import uvicorn

        uvicorn.Server(server_config(function(settings), settings)).run()
        return 0
    # gRPC servers and cron jobs are coroutines that return when done (or on SIGTERM).
    result = asyncio.run(function(settings))
    return int(result or 0)


def _add_serve(commands: Any) -> None:
    serve_cmd = commands.add_parser(
        "serve",
        help="run one component of the catalogue (what each container runs)",
        description="Run one component. Settings come from RHIME_* environment variables.",
    )
    serve_cmd.add_argument("component", help="one of: " + ", ".join(catalogue.BY_NAME))


def _add_up(commands: Any) -> None:
    up = commands.add_parser(
        "up",
        help="run the whole platform locally (gateway on localhost:8080)",
        description="Start Redis, NATS, a MongoDB-wire server, S3 and a fake Spotify on "
        "loopback, then every component of the catalogue as a process.",
    )
    up.add_argument("--data", default=".rhime/local", help="data and logs folder")
    up.add_argument("--fresh", action="store_true", help="delete previous data first")
    up.add_argument("--gateway-port", type=int, default=8080)


def _add_status(commands: Any) -> None:
    status_cmd = commands.add_parser(
        "status",
        help="a live table of the local platform: requests/s, p99, 5xx/s, consumer lag",
        description="Read every component's /metrics of the platform `rhime up` runs and "
        "show, per component, requests/s, p99 latency, 5xx errors/s and consumer lag (events "
        "not yet delivered), refreshed every --interval seconds.",
    )
    status_cmd.add_argument("--data", default=".rhime/local", help="the `rhime up` data folder")
    status_cmd.add_argument(
        "--interval", type=float, default=2.0, help="seconds between refreshes (and scrapes)"
    )
    status_cmd.add_argument(
        "--once", action="store_true", help="print one table (over one interval) and exit"
    )


def _add_seed(commands: Any) -> None:
    seed = commands.add_parser(
        "seed", help="create demo people, follows, posts, comments and likes (platform running)"
    )
    seed.add_argument("--users", type=int, default=40, help="how many demo people")
    seed.add_argument("--url", default="http://localhost:8080", help="the gateway")


def _add_control_plane(commands: Any) -> None:
    control = commands.add_parser(
        "control-plane",
        help="run a Kubernetes control plane on loopback (etcd, API server, controllers)",
        description="Start etcd, kube-apiserver and kube-controller-manager (built by "
        "scripts/bootstrap.sh --kube) with Rhime's CRD, and print a KUBECONFIG. No kubelet "
        "runs, so pods are never started.",
    )
    control.add_argument("action", choices=["up"])
    control.add_argument("--data", default=".rhime/control-plane", help="certificates, data, logs")


def _add_cluster(commands: Any) -> None:
    cluster = commands.add_parser(
        "cluster",
        help="run a single-node Kubernetes that runs pods (root; no Docker, no registry)",
        description="up: start containerd, the control plane, a kubelet, kube-proxy and "
        "CoreDNS on a bridge (10.244.0.1), print a KUBECONFIG and run until Ctrl-C, then "
        "restore the host. down: stop a running `up` or clean up after a crashed one. "
        "status: what runs. roll: rebuild the dev image from the working tree, import it and "
        "point the RhimeDeployment at it (a dev loop without Docker). Binaries come from "
        "scripts/bootstrap.sh --cluster.",
    )
    cluster.add_argument("action", choices=["up", "down", "status", "roll"])
    cluster.add_argument("--data", default=".rhime/cluster", help="certificates, data, logs")
    cluster.add_argument(
        "--namespace", default="rhime", help="roll: the RhimeDeployment's namespace"
    )
    cluster.add_argument("--name", default="rhime", help="roll: the RhimeDeployment")


def _add_image(commands: Any) -> None:
    image_cmd = commands.add_parser(
        "image",
        help="build container images without Docker (docker-save archives, as root)",
        description="Build Rhime's image from the Dockerfile, or the managed infrastructure's "
        "images, as archives for `ctr -n k8s.io images import`.",
    )
    image_actions = image_cmd.add_subparsers(dest="action", required=True, metavar="action")
    image_build = image_actions.add_parser("build", help="Rhime's image, from the Dockerfile")
    image_build.add_argument("--target", choices=["production", "dev"], default="production")
    image_build.add_argument("--output", help="archive path (default .rhime/images/)")
    image_build.add_argument(
        "--tag", help="image name (default rhime.local/rhime:latest, or :dev for dev)"
    )
    image_infra = image_actions.add_parser(
        "infra", help="NATS, Redis and a MongoDB stand-in, from this machine's programs"
    )
    image_infra.add_argument("names", nargs="*", help="nats, redis, mongo (default: all)")
    image_infra.add_argument("--output-dir", default=".rhime/images", help="archive folder")


def _add_listings(commands: Any) -> None:
    commands.add_parser("components", help="list the catalogue")
    commands.add_parser("config", help="print the configuration reference (markdown)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rhime",
        description="Rhime: a social network that recommends friends by music taste.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    # The order here is the order `rhime --help` lists the commands in.
    for add in (
        _add_serve,
        _add_up,
        _add_status,
        _add_seed,
        _add_control_plane,
        _add_cluster,
        _add_image,
        _add_listings,
    ):
        add(commands)
    return parser


def _run_serve(args: argparse.Namespace, *, parser: argparse.ArgumentParser) -> int:
    return serve(args.component)


def _run_components(args: argparse.Namespace, *, parser: argparse.ArgumentParser) -> int:
    for c in catalogue.COMPONENTS:
        print(f"{c.name:22} {c.kind:7} {c.port or '-':>5}  {c.description}")
    return 0


def _run_status(args: argparse.Namespace, *, parser: argparse.ArgumentParser) -> int:
    from pathlib import Path

    if args.interval <= 0:
        parser.error("--interval must be positive")

    from rhime.runtime import status

    try:
        return status.run(data=Path(args.data), interval=args.interval, once=args.once)
    except KeyboardInterrupt:
        return 0


def _run_seed(args: argparse.Namespace, *, parser: argparse.ArgumentParser) -> int:
    from rhime.runtime import seed as seeding

    return seeding.run(url=args.url, users=args.users)


def _run_config(args: argparse.Namespace, *, parser: argparse.ArgumentParser) -> int:
    from rhime import configuration

    print(configuration.reference(), end="")
    return 0


def _run_control_plane(args: argparse.Namespace, *, parser: argparse.ArgumentParser) -> int:
    from rhime.runtime import controlplane

    return controlplane.up(data=args.data)


def _run_image(args: argparse.Namespace, *, parser: argparse.ArgumentParser) -> int:
    if args.action == "build":
        from rhime.runtime import image

        return image.cli(target=args.target, output=args.output, tag=args.tag)
    from rhime.runtime import infraimages

    return infraimages.cli(names=args.names, output_dir=args.output_dir)


def _run_cluster(args: argparse.Namespace, *, parser: argparse.ArgumentParser) -> int:
    if args.action == "roll":
        from rhime.runtime import devloop

        return devloop.cli(data=args.data, namespace=args.namespace, name=args.name)
    from rhime.runtime import cluster as node

    actions = {"up": node.up, "down": node.down, "status": node.status}
    return actions[args.action](data=args.data)


def _run_up(args: argparse.Namespace, *, parser: argparse.ArgumentParser) -> int:
    from rhime.runtime import local

    return local.up(data=args.data, fresh=args.fresh, gateway_port=args.gateway_port)


# Each command's action; the modules behind them are imported only when that command runs.
_ACTIONS: dict[str, Callable[..., int]] = {
    "serve": _run_serve,
    "components": _run_components,
    "status": _run_status,
    "seed": _run_seed,
    "config": _run_config,
    "control-plane": _run_control_plane,
    "image": _run_image,
    "cluster": _run_cluster,
    "up": _run_up,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    action = _ACTIONS.get(args.command)
    if action is None:
        return 2
    return action(args, parser=parser)
