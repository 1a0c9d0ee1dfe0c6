"""The daemon at run time: desired state to engine to field, operator commands, the show runner."""
