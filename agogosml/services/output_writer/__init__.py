"""Accepts scored batches and answers only after the sink durably accepted them."""
