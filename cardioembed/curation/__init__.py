"""Curation: sources and textbooks -> clean sentences -> pairs -> leakage-safe splits
(notebook 01)."""
