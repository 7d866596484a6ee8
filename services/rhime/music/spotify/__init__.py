"""Spotify access shared by the spotify service and the recommendation worker: the Web API
client with its retries, the encrypted token store and the settings both read."""
