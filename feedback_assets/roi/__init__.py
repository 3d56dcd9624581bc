"""Closing the loop: ticket resolutions, the measured impact of each fix, ROI metrics and the executive dashboard."""
