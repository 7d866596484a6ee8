"""comment: comments on posts."""
