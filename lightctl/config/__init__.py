"""config.yaml -> the frozen model (lightctl.model), checked in layers with file:line problems.

The complete check of an installation also resolves its selectors and builds its schedule: use
``lightctl.resolve.loading.load_config`` for that; this package is the part that needs only the
model and the driver plugins' settings.
"""
