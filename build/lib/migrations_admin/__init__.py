"""The control plane of engine migrations: plans, presets, breakers and the operator API."""
