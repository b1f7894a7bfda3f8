"""Tag tasks of the risk domain."""
