"""Tag tasks of the value domain."""
