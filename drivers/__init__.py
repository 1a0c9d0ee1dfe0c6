"""Protocol drivers. One subpackage per protocol; each exports ``PLUGIN`` (see drivers.base)."""
