"""Tag tasks of the demographic domain."""
