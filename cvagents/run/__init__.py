"""A run: the coordinator loop, its schedule, the recorder around every tool call, recovery
after a crash, and the reports rendered from the journal."""
