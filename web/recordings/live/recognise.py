"""The media WebSocket speaks Twilio's or Telnyx's dialect: recognised from the frames."""

from __future__ import annotations

from web.recordings.live.events import Dialect, Event, Ignored, Media, StreamRefused, decode_frame
from web.recordings.live.telnyx import Telnyx, is_telnyx
from web.recordings.live.twilio import Twilio

_IGNORED = Ignored()


class Recognising:
    """Picks the dialect from the first frame that tells them apart, then keeps to it.

    Telnyx frames carry ``sequence_number``/``stream_id``; a ``connected`` frame without
    them says nothing yet; anything else is Twilio's (whose parser words any refusal).
    """

    def __init__(self) -> None:
        self.chosen: Dialect | None = None

    def parse(self, raw: str | bytes | None, *, started: bool) -> Event:
        """The event one frame carries, in the stream's dialect."""
        if self.chosen is None:
            try:
                msg = decode_frame(raw)
            except StreamRefused:
                return Twilio().parse(raw, started=started)
            if is_telnyx(msg):
                self.chosen = Telnyx()
            elif msg["event"] == "connected":
                return _IGNORED
            else:
                self.chosen = Twilio()
        return self.chosen.parse(raw, started=started)

    def held(self) -> list[Media]:
        """What the chosen dialect still holds."""
        return self.chosen.held() if self.chosen is not None else []
