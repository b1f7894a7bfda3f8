"""The relational store: schema, migrations, repositories and the user_tags writer.

Modules are imported by name (`tagsys.store.writer`, ...); this package imports nothing heavy.
"""
