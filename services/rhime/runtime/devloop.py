"""A dev loop without Docker: rebuild the image from the working tree, import it into the
local node (`rhime cluster up`), and point a RhimeDeployment at it; the operator rolls the
pods whose template changed. The role `tilt up` plays on kind.

Each build is tagged by its content (`rhime.local/rhime:dev-<image id>`), so an unchanged
tree changes nothing and a changed one is a new pod template.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from rhime.runtime import cluster as node_mod
from rhime.runtime import image
from rhime.runtime.controlplane import binary
from rhime.runtime.servers import REPO

REPOSITORY = "rhime.local/rhime"


def roll(
    *,
    node: node_mod.Cluster,
    namespace: str,
    name: str,
    target: str = "dev",
    repo: Path = REPO,
    say: Callable[[str], None] = lambda line: None,
) -> str:
    """Build, import and apply; returns the image reference the RhimeDeployment now runs."""
    built = image.build(target=target, repo=repo, cache=REPO / ".rhime" / "image-cache", say=say)
    tag = f"{target}-{built.image_id.removeprefix('sha256:')[:12]}"
    node.import_image(built.path)
    ctr = [binary("ctr"), "--address", str(node.containerd_socket), "--namespace", "k8s.io"]
    subprocess.run(
        [*ctr, "images", "tag", "--force", built.tag, f"{REPOSITORY}:{tag}"],
        check=True,
        capture_output=True,
    )
    patch = {"spec": {"image": {"repository": REPOSITORY, "tag": tag, "pullPolicy": "Never"}}}
    subprocess.run(
        [
            binary("kubectl"),
            f"--kubeconfig={node.kubeconfig}",
            f"--namespace={namespace}",
            "patch",
            "rhimedeployment",
            name,
            "--type=merge",
            f"--patch={json.dumps(patch)}",
        ],
        check=True,
        capture_output=True,
    )
    return f"{REPOSITORY}:{tag}"


def cli(*, data: str, namespace: str, name: str) -> int:
    """`rhime cluster roll`."""
    try:
        reference = roll(
            node=node_mod.Cluster(Path(data)),
            namespace=namespace,
            name=name,
            say=lambda line: print(f"[image] {line}", file=sys.stderr, flush=True),
        )
    except (subprocess.CalledProcessError, image.ImageError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        print(f"rhime cluster roll: {exc} {detail.decode(errors='replace')}", file=sys.stderr)
        return 1
    print(f"{namespace}/{name} now runs {reference}; the operator rolls what changed")
    return 0
