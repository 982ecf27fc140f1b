"""Admin screens of the migration control plane (none yet)."""
