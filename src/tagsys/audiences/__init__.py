"""Audiences (人群圈选): boolean combinations of tags answered from a Roaring-bitmap index of
tag membership kept in step with user_tags.

- `expression`: the expression language, parsed and validated with located errors.
- `index`: the published index in memory (one snapshot per generation).
- `maintain`: taking runs' writes in, rebuilding, publishing atomically.
- `query`: counts, samples, member pages, exports, saved audiences.
- `export`: CSV / Parquet writers, local or S3.
"""
