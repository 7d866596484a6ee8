"""Music taste: profiles from Spotify top items, similarity measures, candidate generation.

Everything here is pure and works on plain data, so the worker, the service, the fake Spotify
and the benchmark share the same functions.
"""
