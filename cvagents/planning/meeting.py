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

from cvagents.clock import stopwatch
from cvagents.config import Settings
from cvagents.llm.base import LLMRequest, LLMResult, Message, Provider, Purpose, Usage
from cvagents.offline.provider import OfflineProvider
from cvagents.offline.voices import agenda as build_agenda
from cvagents.planning import handoff as hf
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
    "estimated_duration, success_criteria; owner one of: {owners}). Never plan a promotion past "
    "a failing or inconclusive gate or skip a stage."
)

SYNTHESIS_SCHEMA = hf.Synthesis.model_json_schema()  # the moderator's answer, enforced by the API


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

    @property
    def participants(self) -> list[str]:
        return sorted({s.agent for s in self.speeches if s.error is None})

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
            )
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
            )
        res = dataclasses.replace(res, text=redact(res.text))  # what is journaled and passed on
        self.record(
            "agent_response",
            {"meeting_id": meeting_id, "agent": agent.name, "purpose": purpose, "prompt_hash": h, **res.as_dict()},
        )
        return Speech(agent.name, purpose, res.text, res.provider, res.model, res.usage, res.latency_s)

    # ------------------------------------------------------------------ the meeting
    def hold(self, meeting_id: str, number: int, timestamp: str, state: dict, earlier: list[str]) -> MeetingOutcome:
        sw = stopwatch()
        agenda = redact(build_agenda(state, meeting_id))
        state_json = redact(json.dumps(state, indent=1, sort_keys=True, ensure_ascii=False))
        history = "\n".join(f"- {s}" for s in earlier) or "- (this is the first meeting)"
        base = (
            f"# Planning meeting {meeting_id}\n\n## Agenda (from the moderator)\n{agenda}\n\n"
            f"## State snapshot\n```json\n{state_json}\n```\n\n## Earlier meetings (summaries)\n{history}\n"
        )
        speeches: list[Speech] = []
        absent: dict[str, str] = {}
        speakers = [a for n, a in self.teams.planning.items() if n != "moderator"]
        said = ""
        for r in range(1, self.rounds + 1):

            def one(agent: Agent, r: int = r, said: str = said) -> Speech:
                ask = CONTRIBUTION_ASK.format(title=agent.title)
                content = base + (f"\n## Round {r - 1} contributions\n{said}\n" if said else "") + "\n" + ask
                return self._ask(agent, "contribution", [Message("user", content)], state, meeting_id)

            with ThreadPoolExecutor(max_workers=max(1, len(speakers))) as pool:
                round_speeches = list(pool.map(one, speakers))
            speeches += round_speeches
            for s in round_speeches:
                if s.error:
                    absent[s.agent] = s.error
            said = "\n\n".join(f"### {s.agent}\n{s.text}" for s in round_speeches if not s.error)

        contributions = "\n\n".join(
            f"### {s.agent} (round {i // max(1, len(speakers)) + 1})\n{s.text}"
            for i, s in enumerate(speeches)
            if not s.error
        )
        ask = SYNTHESIS_ASK.format(max_actions=self.max_actions, owners=", ".join(sorted(self.owners)))
        messages = [Message("user", f"{base}\n## Contributions\n{contributions}\n\n{ask}")]
        synthesis, notes = self._synthesise(messages, state, meeting_id, speeches, absent)
        outcome_status = MeetingStatus.COMPLETED if synthesis else MeetingStatus.FAILED
        h = hf.build_handoff(synthesis, meeting_id, timestamp, number) if synthesis else None
        return MeetingOutcome(
            meeting_id, number, outcome_status, agenda, speeches, synthesis, h, absent, sw.elapsed(), notes
        )

    def _synthesise(
        self, messages: list[Message], state: dict, meeting_id: str, speeches: list[Speech], absent: dict[str, str]
    ) -> tuple[hf.Synthesis | None, list[str]]:
        notes: list[str] = []
        moderator = self.teams.moderator
        for provider, label in ((moderator.provider, "moderator"), (self.fallback, "fallback moderator")):
            msgs = list(messages)
            for attempt in range(self.synthesis_retries + 1):
                s = self._ask(moderator, "synthesis", msgs, state, meeting_id, provider=provider)
                speeches.append(s)
                if s.error:
                    absent[f"moderator ({label})"] = s.error
                    notes.append(f"The {label} did not answer: {s.error}")
                    break
                try:
                    return hf.parse_synthesis(s.text, self.owners, self.max_actions), notes
                except hf.HandoffError as e:
                    notes.append(f"The {label}'s synthesis (attempt {attempt + 1}) failed the action schema: {e}")
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
        return None, notes
