"""The rollout: gates (pure functions), the controller that applies them, decisions,
deployments, approvals, the metrics store, traffic replay and the state snapshot agents read."""
