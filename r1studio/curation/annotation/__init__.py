"""Annotation: queues of items that annotators label (verdict, edits, rating, tags, note),
with leases that never serve an item to more annotators than its overlap, labels that are
never silently overwritten, review of disagreements, agreement figures, and promotion of the
accepted items into a cold-start dataset version. Its models are part of the curation app."""
