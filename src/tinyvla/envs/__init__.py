"""Environments (gymnasium API) with scripted experts."""
