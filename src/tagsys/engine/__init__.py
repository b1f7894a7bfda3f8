"""Runs: planning, the one-pass evaluation, merging with existing tags, and writing."""
