"""Persistent history and batch jobs."""
