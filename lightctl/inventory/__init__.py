"""The installation as an index (controllers, channels, luminaires), selectors over it, and the
hand-back policy (which channels can be left to their owners)."""
