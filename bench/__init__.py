"""Benchmarks of landscape-graphql: `.venv/bin/python -m bench` (see BENCHMARKS.md)."""
