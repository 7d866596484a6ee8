"""Friend recommendations by music taste: the rq worker that fetches tastes and computes
recommendations, the weekly refresh, and the HTTP service that serves them."""
