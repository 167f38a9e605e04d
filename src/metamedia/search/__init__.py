"""Search: offline query parsing and the multi-stage search pipeline."""
