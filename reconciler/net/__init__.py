"""What both sides' HTTP clients share: TLS trust, response caps, JSON decoding, rate-limit pacing."""
