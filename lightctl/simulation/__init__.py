"""The simulator farm: every controller of a config simulated on loopback, in worker processes."""
