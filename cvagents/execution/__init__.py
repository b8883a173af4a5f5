"""The Executive Team's side: the heartbeat's agent loop, the evaluators, and the tools."""
