"""user: profiles, author cards and profile images."""
