"""Recipes, stages and runs: configure, launch, cancel and resume training stages."""
