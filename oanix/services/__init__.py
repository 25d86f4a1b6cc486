"""Special-purpose file services of the agent environment: the task and its logs."""
