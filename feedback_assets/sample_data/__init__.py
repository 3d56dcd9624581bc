"""Synthetic sample data: landing files for every channel, with planted incidents and a manifest."""

from feedback_assets.sample_data.generator import SampleSummary, generate_sample

__all__ = ["SampleSummary", "generate_sample"]
