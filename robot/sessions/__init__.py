"""Sessions compose robots, tasks, policies and stores into the jobs the CLI runs."""
