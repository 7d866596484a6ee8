"""likes: the like, like-updater, like-batch-updater, like-count and like-reconcile components,
sharing the `likes` database. The design is in docs/likes.md."""
