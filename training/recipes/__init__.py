"""Recipes: the documented commands that reproduce the shipped models and the loss comparison."""
