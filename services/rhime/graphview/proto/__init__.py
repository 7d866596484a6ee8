"""Generated gRPC code for user-graph-view (see `rhime.graphview.codegen`).

Importing this package never runs the compiler: it fails, naming the command to run, when the
modules are missing or older than their `.proto` sources.
"""

from __future__ import annotations

from rhime.graphview import codegen

if codegen.stale():
    raise ImportError(
        "the gRPC modules of user-graph-view are missing or older than their .proto sources: "
        "run `python -m rhime.graphview.codegen`"
    )
