"""Resolution: what should be lit at an instant (``desired.resolve``), and the whole-installation
checks and loading that need the inventory, scenes and schedule resolved."""
