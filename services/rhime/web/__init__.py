"""The web client: server-rendered pages that use only the public API."""
