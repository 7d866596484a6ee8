"""`python -m rhime.graphview.proto`: regenerate the gRPC modules from the .proto files."""

from __future__ import annotations

from rhime.graphview import proto

for path in proto.build(force=True):
    print(path)
