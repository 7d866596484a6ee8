"""The spotify service: OAuth with Spotify, encrypted tokens, top items, track search."""
