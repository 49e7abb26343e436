"""Heads on the frozen 1024-d embedding: cached protocol embeddings (``embeddings``), the score and
fault heads and their fitting (``fit``), and choosing among candidates by photo-fold CV (``select``)."""
