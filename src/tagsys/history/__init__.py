"""History and rollback over the change journal (SPEC section 9): who entered and left which
tag when, per user and per tag, and undoing a run. Thin over `tagsys.store.journal`."""
