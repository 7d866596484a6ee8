"""post: posts that share a Spotify track with an optional caption."""
