"""Triggers: events that, after a dwell or an absence, make and deliver a decision."""
