"""The Planning Team's side: the teams, the meeting protocol and the handoff it writes."""
