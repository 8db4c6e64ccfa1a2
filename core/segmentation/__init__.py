"""Object-based refinement of mine patches (seed 003 §2.2.3, SPEC §5)."""
