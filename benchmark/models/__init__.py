"""Backbones and detector engines."""
