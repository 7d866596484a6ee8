"""gateway: the only public component; verifies tokens, gates, rate-limits and routes."""
