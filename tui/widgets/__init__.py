"""Widgets: they show what they are given and post messages up; they do no I/O."""
