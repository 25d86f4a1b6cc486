"""Storage services: trees of files held in memory, computed, layered or on the host."""
