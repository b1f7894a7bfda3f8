"""HTTP routes, one module per resource; each is a thin call into the API or the store."""
