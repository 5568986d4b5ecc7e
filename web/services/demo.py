"""Demo data: an org, two users, three assistants and a month of calls."""

from __future__ import annotations

import asyncio
import io
import logging
import random
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TextIO

from audio import RecordingResult, encode_files
from web.models import (
    Assistant,
    Call,
    CallStatus,
    Direction,
    MessageRole,
    Org,
    Plan,
    RecordingStatus,
    Role,
)
from web.recordings.publish import begin, finished, publish
from web.recordings.spool import spool_paths
from web.services.accounts import create_api_key, create_org, create_user
from web.services.calls import new_call, save_analysis, save_transcript
from web.services.demo_audio import Conversation, synthesize
from web.settings import Settings
from web.storage import Storages

DEMO_ADMIN = ("admin@demo.talkturo.test", "demo-admin-2026")
DEMO_AGENT = ("agent@demo.talkturo.test", "demo-agent-2026")
DEMO_CALLS = 240


@dataclass(frozen=True)
class Scenario:
    """A conversation: alternating (role, text) turns and the analysis it yields.

    ``direction`` is who dialled: the summary is written for that direction.
    ``pauses_ms``, when set, is extra silence before each turn (a caller on hold).
    """

    title: str
    turns: tuple[tuple[str, str], ...]
    summary: str
    success: bool
    data: dict[str, str]
    direction: Direction = Direction.INBOUND
    pauses_ms: tuple[int, ...] | None = None


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "booking",
        (
            (
                "assistant",
                "Thanks for calling Bright Smile Dental, this is Ava. How can I help you today?",
            ),
            ("user", "Hi, I'd like to book a cleaning for next week if you have anything."),
            (
                "assistant",
                "Of course. I have Tuesday at ten or Thursday at two thirty. Which works better?",
            ),
            ("user", "Thursday at two thirty is perfect."),
            (
                "assistant",
                "Great, you're booked for Thursday at two thirty. Can I have your name please?",
            ),
            ("user", "It's Jordan Miller."),
            (
                "assistant",
                "Thank you Jordan. You'll get a text confirmation shortly. Anything else?",
            ),
            ("user", "No, that's all. Thanks!"),
        ),
        "Caller Jordan Miller booked a cleaning for Thursday at 2:30 pm.",
        True,
        {"intent": "book_appointment", "appointment": "Thursday 14:30", "name": "Jordan Miller"},
    ),
    Scenario(
        "billing",
        (
            ("assistant", "Hello, you've reached Northwind Energy billing. What can I do for you?"),
            (
                "user",
                "My bill this month is almost double the usual amount and I don't understand why.",
            ),
            ("assistant", "I'm sorry about that. Can you confirm the account number on your bill?"),
            ("user", "Sure, it's four four seven, one two nine, eight."),
            (
                "assistant",
                "Thanks. I see an estimated reading last month, and this bill corrects it.",
            ),
            ("user", "Oh, so it will go back to normal next month?"),
            (
                "assistant",
                "Yes, next month should be back to your usual usage. I can also set up a payment plan.",
            ),
            ("user", "No need, that makes sense. Thank you."),
        ),
        "High bill explained by a corrected estimated reading; caller satisfied, no payment plan.",
        True,
        {"intent": "billing_question", "account": "447-129-8", "resolution": "explained"},
    ),
    Scenario(
        "cancel",
        (
            ("assistant", "Good afternoon, Atlas Fitness, how can I help?"),
            ("user", "I want to cancel my membership, I'm moving to another city."),
            (
                "assistant",
                "I understand. Cancellations need thirty days notice. Shall I start that today?",
            ),
            ("user", "Thirty days? Can't you just stop it now?"),
            (
                "assistant",
                "I'm afraid the contract requires notice, but I can waive next month's fee for a move.",
            ),
            ("user", "Fine, please do that."),
        ),
        "Member cancelling due to relocation; 30-day notice started, next month's fee waived.",
        False,
        {"intent": "cancel_membership", "reason": "relocation", "retention_offer": "fee waived"},
    ),
    Scenario(
        "delivery",
        (
            ("assistant", "Hi, this is Max from Parcel Express calling about your delivery today."),
            ("user", "Oh hi, yes, I was expecting it this morning."),
            (
                "assistant",
                "The driver is running late. It should arrive between three and five. Is that okay?",
            ),
            ("user", "I won't be home. Can you leave it with my neighbour at number twelve?"),
            ("assistant", "Yes, I've added a note to leave it at number twelve. Anything else?"),
            ("user", "No, thanks for letting me know."),
        ),
        "Outbound delivery update; parcel redirected to neighbour at number 12.",
        True,
        {"intent": "delivery_update", "new_window": "15:00-17:00", "redirect": "neighbour no. 12"},
        Direction.OUTBOUND,
    ),
    Scenario(
        "support",
        (
            ("assistant", "Thanks for calling Acme Cloud support. What seems to be the problem?"),
            ("user", "Our website has been down for twenty minutes and we're losing orders."),
            (
                "assistant",
                "I'm sorry. I can see an incident in your region. Engineers are on it right now.",
            ),
            ("user", "Is there an estimate for when it's back?"),
            (
                "assistant",
                "The current estimate is within thirty minutes. I'll open a ticket and text you updates.",
            ),
            ("user", "Please do. This is really urgent for us."),
        ),
        "Customer reported outage during a regional incident; ticket opened with SMS updates.",
        False,
        {"intent": "outage_report", "priority": "urgent", "ticket": "INC-20931"},
    ),
    Scenario(
        "reminder",
        (
            (
                "assistant",
                "Hello, this is Ava from Bright Smile Dental, calling to confirm your appointment tomorrow at nine.",
            ),
            ("user", "Oh right, thanks for the reminder."),
            ("assistant", "Will you be able to make it, or would you like to move it?"),
            ("user", "Could we make it a bit later? Eleven would be better."),
            ("assistant", "Eleven is free. I've moved your appointment to tomorrow at eleven."),
            ("user", "Perfect, see you then."),
        ),
        "Outbound appointment reminder; patient moved tomorrow's visit from 9:00 to 11:00.",
        True,
        {"intent": "confirm_appointment", "old_time": "09:00", "new_time": "11:00"},
        Direction.OUTBOUND,
    ),
)


def _router_call() -> Scenario:
    """A troubleshooting call of about six minutes, with the caller away at each step."""
    steps = (
        (
            "unplug the router from the wall, wait ten seconds, and plug it back in",
            "Okay, it's back on. The lights are blinking.",
        ),
        ("look at the light marked internet and tell me its colour", "It's orange, not green."),
        (
            "check that the grey cable is pushed firmly into the port marked broadband",
            "It was a little loose. I pushed it in.",
        ),
        (
            "hold the reset button on the back for five seconds with a pen",
            "Done. All the lights went off and came back.",
        ),
        (
            "open the settings page on your laptop and find the network name",
            "I see it. It says Home Fibre five G.",
        ),
        (
            "forget that network on your laptop and join it again with the password on the sticker",
            "It's asking for the password, typing it in now.",
        ),
    )
    turns: list[tuple[str, str]] = [
        ("assistant", "Thanks for calling Lumen Broadband support, this is Max. How can I help?"),
        ("user", "My internet has been dropping all morning and now it won't connect at all."),
        ("assistant", "I'm sorry to hear that. Let's go through it together, one step at a time."),
    ]
    pauses = [0, 0, 0]
    for round_ in ("first", "second", "third"):
        for n, (ask, answer) in enumerate(steps, start=1):
            turns.append(("assistant", f"On the {round_} pass, step {n}: please {ask}."))
            turns.append(("user", "Give me a moment."))
            turns.append(("user", answer))
            pauses += [0, 0, 2500 + 1500 * n]
        turns.append(
            (
                "assistant",
                "Thank you. Let me run a line test from our side, it takes a few seconds.",
            )
        )
        turns.append(
            ("assistant", "The line test shows the signal dropping again. Let's try once more.")
        )
        pauses += [0, 6000]
    turns[-1] = (
        "assistant",
        "The line test is clean now and your connection is stable. Is it working for you?",
    )
    turns.append(("user", "Yes, pages are loading again. Thank you for your patience."))
    turns.append(
        (
            "assistant",
            "You're welcome. I've noted the loose cable on your account. Have a good day.",
        )
    )
    pauses += [0, 0]
    return Scenario(
        "router",
        tuple(turns),
        "Caller's broadband kept dropping; a loose cable and a router reset fixed it after a line test.",
        True,
        {
            "intent": "internet_outage",
            "cause": "loose broadband cable",
            "resolution": "fixed on call",
        },
        Direction.INBOUND,
        tuple(pauses),
    )


LONG_SCENARIO = _router_call()
# Inbound calls numbered LONG_EVERY // 2 modulo LONG_EVERY get the long scenario: about ten of 240.
LONG_EVERY = 12


def _phone(rng: random.Random) -> str:
    return f"+1 {rng.randint(201, 989)}-{rng.randint(200, 999)}-{rng.randint(1000, 9999)}"


class _Progress:
    """A one-line progress bar on a terminal, plain lines otherwise."""

    def __init__(self, out: TextIO, total: int, label: str) -> None:
        self.out, self.total, self.label = out, total, label
        self.tty = out.isatty()
        self.last = -1

    def update(self, done: int) -> None:
        pct = done * 100 // max(self.total, 1)
        if self.tty:
            bar = "#" * (pct // 4)
            self.out.write(f"\r{self.label} [{bar:<25}] {done}/{self.total}")
            if done == self.total:
                self.out.write("\n")
            self.out.flush()
        elif pct // 10 != self.last // 10 or done == self.total:
            self.out.write(f"{self.label}: {done}/{self.total} ({pct}%)\n")
            self.out.flush()
        self.last = pct


async def seed_demo_if_empty(settings: Settings, progress: TextIO = sys.stderr) -> bool:
    """Seed the demo when the database has no org yet; returns whether it did."""
    if await Org.exists():
        progress.write("Database already has data; not seeding the demo.\n")
        return False
    await seed_demo(settings, progress)
    return True


async def seed_demo(
    settings: Settings, progress: TextIO = sys.stderr, calls: int = DEMO_CALLS
) -> Org:
    """Seed a demo org with users, assistants and about a month of calls."""
    if await Org.exists(name="Demo Co"):
        progress.write("A demo org already exists; seeding another one beside it.\n")
    rng = random.Random(2026)
    org = await create_org("Demo Co", Plan.PRO)
    suffix = "" if not await _email_taken(DEMO_ADMIN[0]) else f"+{org.id.hex[:6]}"
    admin_email = DEMO_ADMIN[0].replace("@", f"{suffix}@")
    agent_email = DEMO_AGENT[0].replace("@", f"{suffix}@")
    await create_user(org, admin_email, DEMO_ADMIN[1], Role.ADMIN)
    await create_user(org, agent_email, DEMO_AGENT[1], Role.AGENT)
    _, key = await create_api_key(org, "demo", Role.ADMIN)
    assistants = [
        await Assistant.create(org=org, name="Reception (main line)", recording_enabled=True),
        await Assistant.create(org=org, name="Appointment booker", recording_enabled=True),
        await Assistant.create(org=org, name="After-hours support", recording_enabled=False),
    ]
    now = datetime.now(UTC).replace(microsecond=0)
    bar = _Progress(progress, calls, "Seeding demo calls")
    # The per-recording log lines would bury the progress bar and the logins printed below.
    recording_log = logging.getLogger("talkturo.recording")
    level = recording_log.level
    recording_log.setLevel(logging.WARNING)
    try:
        async with Storages(settings) as storages:
            voices = _Voices(settings, storages)
            for i in range(calls):
                await _seed_call(rng, org, assistants, now, i, voices)
                bar.update(i + 1)
    finally:
        recording_log.setLevel(level)
    progress.write(
        "Demo ready.\n"
        f"  admin: {admin_email} / {DEMO_ADMIN[1]}\n"
        f"  agent: {agent_email} / {DEMO_AGENT[1]}\n"
        f"  API key: {key}\n"
    )
    progress.flush()
    return org


async def _email_taken(email: str) -> bool:
    from web.models import User

    return await User.exists(email=email)


class _Voices:
    """Speaks and encodes each scenario once; every call that uses it gets its own copy."""

    def __init__(self, settings: Settings, storages: Storages) -> None:
        self.settings, self.storages = settings, storages
        self.cache: dict[tuple[str, int], Conversation] = {}
        self.encoded: dict[int, tuple[bytes, RecordingResult]] = {}

    async def conversation(self, scenario: Scenario, turns: int) -> Conversation:
        """The first ``turns`` turns of ``scenario``, spoken (once per scenario and length)."""
        key = (scenario.title, turns)
        if key not in self.cache:
            pauses = scenario.pauses_ms[:turns] if scenario.pauses_ms else None
            self.cache[key] = await asyncio.to_thread(synthesize, scenario.turns[:turns], pauses)
        return self.cache[key]

    async def _encode(self, talk: Conversation) -> tuple[bytes, RecordingResult]:
        if id(talk) not in self.encoded:
            buf = io.BytesIO()
            result = await asyncio.to_thread(
                encode_files, caller=talk.caller_wav, assistant=talk.assistant_wav, dest=buf
            )
            self.encoded[id(talk)] = (buf.getvalue(), result)
        return self.encoded[id(talk)]

    async def record(self, call: Call, talk: Conversation) -> None:
        """Store the call's MP3 and peaks and publish them like any finished recording."""
        mp3, result = await self._encode(talk)
        spool, _ = spool_paths(self.settings, call.id)
        spool.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(spool.write_bytes, mp3)
        begun = await begin(self.settings, self.storages, call, RecordingStatus.PROCESSING, spool)
        done = finished(spool, result)
        await publish(
            self.settings, self.storages, begun.row, done, storage=begun.storage, call=call
        )


async def _seed_call(
    rng: random.Random,
    org: Org,
    assistants: list[Assistant],
    now: datetime,
    i: int,
    voices: _Voices,
) -> Call:
    assistant = rng.choice(assistants)
    direction = Direction.OUTBOUND if rng.random() < 0.3 else Direction.INBOUND
    started = now - timedelta(seconds=rng.randint(60, 30 * 86400))
    roll = rng.random()
    status = (
        CallStatus.COMPLETED
        if roll < 0.74
        else CallStatus.NO_ANSWER
        if roll < 0.85
        else CallStatus.BUSY
        if roll < 0.92
        else CallStatus.FAILED
    )
    ours = "+1 415-555-0100"
    theirs = _phone(rng)
    src, dst = (theirs, ours) if direction is Direction.INBOUND else (ours, theirs)
    answered = status in {CallStatus.COMPLETED, CallStatus.FAILED}
    duration_ms = (
        rng.randint(35_000, 420_000)
        if status is CallStatus.COMPLETED
        else (rng.randint(3_000, 25_000) if status is CallStatus.FAILED else rng.randint(0, 30_000))
    )
    call = await new_call(
        org.id,
        assistant,
        direction,
        src,
        dst,
        started,
        status=status,
        ended_at=started + timedelta(milliseconds=duration_ms),
        duration_ms=duration_ms,
    )
    if not answered:
        return call
    scenario = _scenario_for(i, direction)
    turns = scenario.turns if status is CallStatus.COMPLETED else scenario.turns[:2]
    talk = await voices.conversation(scenario, len(turns))
    # The call lasts as long as its speech, and each message sits where it is spoken.
    call.duration_ms = talk.duration_ms
    call.ended_at = started + timedelta(milliseconds=talk.duration_ms)
    await call.save(update_fields=["duration_ms", "ended_at"])
    await save_transcript(
        call,
        [(MessageRole(role), text, *talk.turns_ms[seq]) for seq, (role, text) in enumerate(turns)],
    )
    if call.recording_enabled:
        await voices.record(call, talk)
    if status is CallStatus.COMPLETED:
        await save_analysis(call, scenario.summary, scenario.success, scenario.data)
    return call


def _scenario_for(i: int, direction: Direction) -> Scenario:
    """The scenario of the ``i``-th seeded call: one written for its direction."""
    if direction is LONG_SCENARIO.direction and i % LONG_EVERY == LONG_EVERY // 2:
        return LONG_SCENARIO
    fitting = [s for s in SCENARIOS if s.direction is direction]
    return fitting[i % len(fitting)]
