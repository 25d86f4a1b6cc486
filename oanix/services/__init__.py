"""Special-purpose file services of the agent environment: the task, its logs, a
key-value store (``kv``) and SQL queries (``sql``)."""
