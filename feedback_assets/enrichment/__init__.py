"""Enrichment: classify silver feedback into the business taxonomy (LLM or the local semantic backend)."""
