"""The sparse engine: masks, density allocation, prune/grow criteria, schedules, packing, inference."""
