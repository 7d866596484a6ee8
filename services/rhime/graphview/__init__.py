"""user-graph-view: an internal gRPC stream of a user's followers or followees."""
