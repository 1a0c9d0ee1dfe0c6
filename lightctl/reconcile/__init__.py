"""Reconciliation: the engine that holds desired and reported state per controller and closes the
gap (the one switch, supervision, convergence), its reconnect policy, and ``explain``."""
