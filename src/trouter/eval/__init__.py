"""Evaluation: cost-quality curves, AIQ, rewards (`metrics`), protocols, the benchmark runner, reports and plots."""
