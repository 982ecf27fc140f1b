"""Migration plans, their history and configuration presets (none yet)."""
