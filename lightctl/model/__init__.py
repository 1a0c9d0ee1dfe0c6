"""The model: pure values and frozen configuration types, shared by every layer above.

Nothing here does I/O or imports from the rest of the project (``make lint`` enforces it). The
package re-exports nothing: import from its modules (values, installation, scenes, schedule,
config, desired, times), so that a light command pays only for what it uses.
"""
