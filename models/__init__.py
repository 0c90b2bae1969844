"""Shipped default models and their model cards."""
