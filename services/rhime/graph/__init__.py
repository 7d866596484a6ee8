"""user-graph: follow and unfollow, follower and following lists and counts."""
