"""Tag tasks of the wealth domain."""
