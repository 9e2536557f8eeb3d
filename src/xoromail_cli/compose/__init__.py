"""Event + variables -> RFC 5322 bytes: events, rendering, MIME, headers, the envelope."""
