"""Stage: export."""
