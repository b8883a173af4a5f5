"""The planning meeting: agenda → contributions in parallel → the moderator's synthesis,
checked against the action schema → transcript, summary, actions and the handoff.

A meeting costs one round-trip per contribution round plus one for the synthesis: agents of
a round speak in parallel, so the wall time follows the critical path, not the head count.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum

from cvagents import tracing
from cvagents.clock import stopwatch
from cvagents.config import Settings
from cvagents.llm.base import LLMRequest, LLMResult, Message, Provider, Purpose, Usage
from cvagents.offline.provider import OfflineProvider
from cvagents.offline.voices import agenda as build_agenda
from cvagents.planning import handoff as hf
from cvagents.planning import spans
from cvagents.planning.participation import Participation, judge
from cvagents.planning.team import Agent, Teams
from cvagents.secrets import redact

log = logging.getLogger("cvagents.planning.meeting")

CONTRIBUTION_ASK = (
    "Answer as the {title} in at most about 250 words of markdown, in your role's voice, and end "
    "with a section 'Recommended actions:' of 1-5 bullets, each a complete imperative sentence."
)
SYNTHESIS_ASK = (
    "Synthesise the meeting. Return ONLY a JSON object with keys decisions, go_no_go, risks, "
    "cross_pollination and actions (at most {max_actions}; each with action, owner, priority, "
    "estimated_duration, success_criteria; owner one of: {owners}). Each action is a sentence a "
    "person could act on (e.g. '{example}'), never a tool or function name; each success_criteria "
    "names what to measure: a number or threshold, or one of {terms}. Never plan a promotion past "
    "a failing or inconclusive gate or skip a stage."
)

SYNTHESIS_SCHEMA = hf.Synthesis.model_json_schema()  # the moderator's answer, enforced by the API


# State keys that change rarely (the rollout's shape and rules): rendered first, so they join the
# prefix a provider's prompt cache serves again at the next meeting.
STABLE_STATE_KEYS = ("stages_order", "thresholds", "replay", "plan", "models", "stages")
LAST_STATE_KEYS = ("meeting_number",)  # new at every meeting


def _sorted(value: object) -> object:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def state_json(state: dict) -> str:
    """``state`` as indented JSON: the stable keys first, the rest sorted, the meeting's number
    last; each value sorted within."""
    first = [k for k in STABLE_STATE_KEYS if k in state]
    last = [k for k in LAST_STATE_KEYS if k in state]
    middle = sorted(k for k in state if k not in first and k not in last)
    ordered = {k: _sorted(state[k]) for k in first + middle + last}
    return json.dumps(ordered, indent=1, ensure_ascii=False)


def prompt_hash(req: LLMRequest) -> str:
    h = hashlib.sha256()
    h.update(req.system.encode())
    for m in req.messages:
        h.update(f"\x00{m.role}\x00{m.content}".encode())
    return h.hexdigest()[:16]


@dataclass
class Speech:
    agent: str
    purpose: str
    text: str
    provider: str
    model: str
    usage: Usage
    latency_s: float
    error: str | None = None
    stop_reason: str = ""
    participation: Participation = Participation.TOOK_PART  # see cvagents.planning.participation
    participation_note: str = ""  # why it did not count, for the transcript and the summary

    @property
    def passed_on(self) -> bool:
        """Its words reach the next round and the synthesis (an empty or echoed answer's do not)."""
        return self.participation in (Participation.TOOK_PART, Participation.CUT)

    @property
    def as_heard(self) -> str:
        """The words passed on; a cut answer says it was cut."""
        return self.text + ("\n[cut at its output limit]" if self.participation == Participation.CUT else "")

    def judged(self, req: LLMRequest) -> Speech:
        """This answer with its participation judged against the request it answers."""
        prompt = "\n".join([req.system, *(m.content for m in req.messages)])
        v = judge(self.text, prompt, self.stop_reason, check_echo=self.purpose == "contribution")
        return dataclasses.replace(self, participation=v.participation, participation_note=v.why)


class MeetingStatus(StrEnum):
    """How a meeting ended (``meeting_completed`` records and the planning summary carry it)."""

    COMPLETED = "completed"  # a synthesis passed the action schema; its actions are the new handoff
    FAILED = "failed"  # no synthesis passed the schema: the previous handoff stands


@dataclass
class MeetingOutcome:
    meeting_id: str
    number: int
    status: MeetingStatus
    agenda: str
    speeches: list[Speech]
    synthesis: hf.Synthesis | None
    handoff: hf.Handoff | None
    absent: dict[str, str]
    duration_s: float
    notes: list[str] = field(default_factory=list)
    no_plan_reason: str | None = None  # a failed meeting: why no synthesis passed (the last rejection)

    @property
    def participants(self) -> list[str]:
        """The agents that took part: at least one answer that was not empty, echoed or cut."""
        return sorted({s.agent for s in self.speeches if s.participation == Participation.TOOK_PART})

    def participation_by_agent(self) -> dict[str, str]:
        """Each agent's part in the meeting: ``took_part`` when any of its answers counted, else
        what its last answer was (``empty``, ``echoed``, ``cut``), ``absent`` when none came."""
        out: dict[str, str] = {}
        for s in self.speeches:
            if out.get(s.agent) == Participation.TOOK_PART or (
                s.participation == Participation.ABSENT and s.agent in out
            ):
                continue
            out[s.agent] = s.participation.value
        return out

    def usage_by_agent(self) -> dict[str, Usage]:
        out: dict[str, Usage] = {}
        for s in self.speeches:
            out[s.agent] = out.get(s.agent, Usage()) + s.usage
        return out


# A journal-backed memo: (agent, purpose, prompt hash) -> a response already paid for.
ResponseMemo = Callable[[str, str, str], dict | None]
Recorder = Callable[[str, dict], None]


class Meeting:
    def __init__(
        self,
        teams: Teams,
        *,
        max_actions: int = 20,
        rounds: int = 1,
        synthesis_retries: int = 2,
        fallback_moderator: Provider | None = None,
        max_tokens: int = 1500,
        record: Recorder | None = None,
        memo: ResponseMemo | None = None,
    ):
        self.teams = teams
        self.max_actions = max_actions
        self.rounds = rounds
        self.synthesis_retries = synthesis_retries
        self.fallback: Provider = fallback_moderator or OfflineProvider()
        self.max_tokens = max_tokens
        self.record = record or (lambda kind, data: None)
        self.memo = memo or (lambda agent, purpose, h: None)
        self.owners = set(teams.executive)

    @classmethod
    def from_settings(
        cls, teams: Teams, settings: Settings, *, record: Recorder | None = None, memo: ResponseMemo | None = None
    ) -> Meeting:
        """The meeting ``configs/meeting.yaml`` describes (its protocol and call defaults)."""
        m = settings.meeting
        fallback = m.meeting.fallback_moderator
        return cls(
            teams,
            max_actions=m.meeting.max_actions,
            rounds=m.meeting.rounds,
            synthesis_retries=m.meeting.synthesis_retries,
            fallback_moderator=None if fallback == "offline" else teams.planning[fallback].provider,
            max_tokens=m.defaults.max_tokens,
            record=record,
            memo=memo,
        )

    # ------------------------------------------------------------------ one call
    def _ask(
        self,
        agent: Agent,
        purpose: Purpose,
        messages: list[Message],
        state: dict,
        meeting_id: str,
        provider: Provider | None = None,
    ) -> Speech:
        provider = provider or agent.provider
        req = LLMRequest(
            agent=agent.name,
            role=agent.config.role,
            purpose=purpose,
            system=agent.system_prompt,
            messages=tuple(messages),
            max_tokens=agent.config.max_tokens or self.max_tokens,
            context={"state": state, "meeting_id": meeting_id},
            response_schema=SYNTHESIS_SCHEMA if purpose == "synthesis" else None,  # enforced natively
        )
        h = prompt_hash(req)
        cached = self.memo(agent.name, purpose, h)
        if cached is not None:
            return Speech(
                agent.name,
                purpose,
                redact(cached["text"]),
                cached["provider"],
                cached["model"],
                Usage(**cached["usage"]),
                cached.get("latency_s", 0.0),
                stop_reason=cached.get("stop_reason", ""),
            ).judged(req)
        try:
            res: LLMResult = provider.complete(req)
        except Exception as e:  # a provider outage never ends the meeting
            error = redact(e)
            log.warning("%s did not answer: %s", agent.name, error)
            self.record(
                "agent_absent",
                {"meeting_id": meeting_id, "agent": agent.name, "purpose": purpose, "prompt_hash": h, "error": error},
            )
            return Speech(
                agent.name,
                purpose,
                "",
                provider.name,
                provider.model,
                Usage(),
                0.0,
                error=error,
                participation=Participation.ABSENT,
            )
        res = dataclasses.replace(res, text=redact(res.text))  # what is journaled and passed on
        self.record(
            "agent_response",
            {"meeting_id": meeting_id, "agent": agent.name, "purpose": purpose, "prompt_hash": h, **res.as_dict()},
        )
        speech = Speech(
            agent.name,
            purpose,
            res.text,
            res.provider,
            res.model,
            res.usage,
            res.latency_s,
            stop_reason=res.stop_reason,
        )
        return speech.judged(req)

    # ------------------------------------------------------------------ the meeting
    @spans.meeting
    def hold(self, meeting_id: str, number: int, timestamp: str, state: dict, earlier: list[str]) -> MeetingOutcome:
        sw = stopwatch()
        agenda = redact(build_agenda(state, meeting_id))
        state_text = redact(state_json(state))
        history = "\n".join(f"- {s}" for s in earlier) or "- (this is the first meeting)"
        # Each prompt is ordered for the providers' prompt caches: the fixed ask first, then what
        # changes least (the state, stable keys first) to most (earlier meetings, agenda, this round).
        base = (
            f"## State snapshot\n```json\n{state_text}\n```\n\n## Earlier meetings (summaries)\n{history}\n\n"
            f"# Planning meeting {meeting_id}\n\n## Agenda (from the moderator)\n{agenda}\n"
        )
        speeches: list[Speech] = []
        absent: dict[str, str] = {}
        speakers = [a for n, a in self.teams.planning.items() if n != "moderator"]
        said = ""
        for r in range(1, self.rounds + 1):

            def one(agent: Agent, r: int = r, said: str = said) -> Speech:
                ask = CONTRIBUTION_ASK.format(title=agent.title)
                content = ask + "\n\n" + base + (f"\n## Round {r - 1} contributions\n{said}\n" if said else "")
                return self._ask(agent, "contribution", [Message("user", content)], state, meeting_id)

            with ThreadPoolExecutor(max_workers=max(1, len(speakers))) as pool:
                round_speeches = list(pool.map(tracing.carry(one), speakers))
            speeches += round_speeches
            for s in round_speeches:
                if s.error:
                    absent[s.agent] = s.error
            said = "\n\n".join(f"### {s.agent}\n{s.as_heard}" for s in round_speeches if s.passed_on)
        not_counted = self._not_counted(speeches, meeting_id)

        contributions = "\n\n".join(
            f"### {s.agent} (round {i // max(1, len(speakers)) + 1})\n{s.as_heard}"
            for i, s in enumerate(speeches)
            if s.passed_on
        )
        ask = SYNTHESIS_ASK.format(
            max_actions=self.max_actions,
            owners=", ".join(sorted(self.owners)),
            example=hf.ACTION_EXAMPLE,
            terms=", ".join(hf.MEASURABLE_TERMS),
        )
        messages = [Message("user", f"{ask}\n\n{base}\n## Contributions\n{contributions}\n")]
        synthesis, notes, no_plan_reason = self._synthesise(messages, state, meeting_id, speeches, absent)
        notes = not_counted + notes
        outcome_status = MeetingStatus.COMPLETED if synthesis else MeetingStatus.FAILED
        h = hf.build_handoff(synthesis, meeting_id, timestamp, number) if synthesis else None
        return MeetingOutcome(
            meeting_id,
            number,
            outcome_status,
            agenda,
            speeches,
            synthesis,
            h,
            absent,
            sw.elapsed(),
            notes,
            no_plan_reason,
        )

    def _not_counted(self, speeches: list[Speech], meeting_id: str) -> list[str]:
        """A note (and a log line) for each contribution that did not count as taking part."""
        notes = []
        for s in speeches:
            if s.participation not in (Participation.TOOK_PART, Participation.ABSENT):
                notes.append(f"{s.agent}'s {s.purpose} was not counted as taking part: {s.participation_note}")
                log.warning("⚠️ %s (meeting %s): %s", s.agent, meeting_id, notes[-1])
        return notes

    def _synthesise(
        self, messages: list[Message], state: dict, meeting_id: str, speeches: list[Speech], absent: dict[str, str]
    ) -> tuple[hf.Synthesis | None, list[str], str | None]:
        """The first synthesis that passes the schema, the notes on the way, and (when none
        passed) the last reason one was refused."""
        notes: list[str] = []
        reason: str | None = None
        moderator = self.teams.moderator
        for provider, label in ((moderator.provider, "moderator"), (self.fallback, "fallback moderator")):
            msgs = list(messages)
            for attempt in range(self.synthesis_retries + 1):
                s = self._ask(moderator, "synthesis", msgs, state, meeting_id, provider=provider)
                speeches.append(s)
                if s.error:
                    absent[f"moderator ({label})"] = s.error
                    notes.append(f"The {label} did not answer: {s.error}")
                    reason = f"the {label} did not answer: {s.error}"
                    break
                try:
                    return hf.parse_synthesis(s.text, self.owners, self.max_actions), notes, None
                except hf.HandoffError as e:
                    reason = f"the {label}'s synthesis failed the action schema: {e}"
                    notes.append(f"The {label}'s synthesis (attempt {attempt + 1}) failed the action schema: {e}")
                    log.warning(
                        "❌ Synthesis rejected (%s, %s, attempt %d of %d): %s",
                        meeting_id,
                        label,
                        attempt + 1,
                        self.synthesis_retries + 1,
                        e,
                    )
                    self.record(
                        "synthesis_rejected",
                        {"meeting_id": meeting_id, "by": label, "attempt": attempt + 1, "error": str(e)},
                    )
                    msgs = msgs + [
                        Message("assistant", s.text),
                        Message("user", f"Your answer failed validation: {e}\nReturn ONLY the corrected JSON object."),
                    ]
            if provider is self.fallback:
                break
            notes.append("The fallback moderator synthesised instead.")
        return None, notes, reason
