"""Tag tasks of the behavior domain."""
