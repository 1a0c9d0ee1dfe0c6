"""The daemon's processes: ``run`` (daemon and API), ``sim`` (simulators), ``demo`` (both)."""
