"""Route modules, one per screen."""
