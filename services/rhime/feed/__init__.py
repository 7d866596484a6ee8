"""feed: home and profile timelines. The design is in docs/feed.md."""
