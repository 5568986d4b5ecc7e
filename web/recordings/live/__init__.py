"""Live media streams: a dialect parser per telephony protocol, and the session they feed."""
