"""The music context's shared code, below the spotify and recommendation components.

Music taste (profiles from Spotify top items, similarity measures, candidate generation) is
pure and works on plain data, so the worker, the services, the fake Spotify and the benchmark
share the same functions. Beside it: the `music` database's shared collections (`store`,
`tastes`) and Spotify access (`spotify`), which both components use.
"""
