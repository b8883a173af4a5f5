"""The line a meeting leaves for the next ones' "Earlier meetings": what it concluded, never empty."""

from cvagents.run.earlier import meeting_line


def rec(status="completed", decisions=(), go=None, actions=(), reason=None):
    acts = [{"id": i, "action": a} for i, a in enumerate(actions, start=1)]
    return {
        "meeting_id": "meeting_1",
        "status": status,
        "synthesis": {"decisions": [{"decision": d} for d in decisions], "go_no_go": go}
        if status == "completed"
        else None,
        "handoff": {"actions": acts, "count": len(acts)} if status == "completed" else None,
        "no_plan_reason": reason,
    }


def test_decisions_and_the_go_no_go_are_the_conclusion():
    go = {"stage": "5_percent", "decision": "hold", "reason": "ndcg_at_10 inconclusive"}
    line = meeting_line(rec(decisions=["Hold at shadow", "Run the drill"], go=go, actions=["A b c."] * 4))
    assert line == (
        "meeting_1: decided Hold at shadow; Run the drill; go/no-go for 5_percent: hold (ndcg_at_10 inconclusive); "
        "4 actions"
    )


def test_no_decision_names_the_first_actions_planned():
    line = meeting_line(
        rec(actions=["Evaluate the shadow version.", "Run the rollback drill.", "Replay traffic.", "X y z."])
    )
    assert line == (
        "meeting_1: 4 actions: Evaluate the shadow version.; Run the rollback drill.; Replay traffic.; and 1 more"
    )


def test_a_go_no_go_alone_or_no_action_at_all_is_still_said():
    go = {"stage": "production", "decision": "go", "reason": ""}
    assert meeting_line(rec(go=go)) == "meeting_1: go/no-go for production: go; no actions planned"
    assert meeting_line(rec()) == "meeting_1: no actions planned"


def test_a_failed_meeting_says_there_is_no_new_plan_and_why():
    line = meeting_line(rec("failed", reason="the moderator did not answer: HTTP 500"))
    assert line == "meeting_1: failed, no new plan (the previous one stands): the moderator did not answer: HTTP 500"
    older = {k: v for k, v in rec("failed").items() if k != "no_plan_reason"}  # journaled before the reason was
    assert meeting_line(older).endswith("no synthesis passed the action schema")
    long = meeting_line(rec("failed", reason="x " * 1000))
    assert len(long) < 400 and long.endswith("…")
