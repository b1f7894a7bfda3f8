"""Tag tasks of the lifecycle domain."""
