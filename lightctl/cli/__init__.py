"""``lightctl``: the command line."""
