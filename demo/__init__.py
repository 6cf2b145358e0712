"""``make demo`` (``python -m demo``): the node on the bundled model and generated road scenes."""
