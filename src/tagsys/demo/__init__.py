"""Demo data: a generated lake of the seed's three user tables and the seed's eight tags."""
