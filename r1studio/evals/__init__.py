"""Benchmarks, evaluation results and the leaderboard."""
