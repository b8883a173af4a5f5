"""The built-in offline team: a rule-based provider that plays every agent without keys."""
