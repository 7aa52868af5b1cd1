"""Consumes the source, validates and transforms records, forwards micro-batches to the app,
dead-letters bad input and commits offsets only after the app acknowledged."""
