"""The service kit: what every Rhime component gets from one `create_app(settings, ...)` call."""
