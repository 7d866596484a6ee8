"""A fake Spotify Web API and accounts service serving the synthetic population."""
