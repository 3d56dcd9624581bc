"""Alerting: velocity breaches turned into owned tickets and Slack posts, exactly once."""
