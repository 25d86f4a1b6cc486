"""Nostr as files: NostrFs (the service), its relay connector, and the protocol pieces
they share (events and signatures, filters, bech32 names).

``NostrRelayConnector`` needs ``websockets.trio`` (websockets 17 and later, the ``ws``
extra); it is imported on first use (see ``oanix.cap``).
"""

from .bech32 import bech32_encode, npub_encode
from .event import Event, bip340_sign, event_id, sign_event, verify_event
from .filters import filter_matches, validate_filters
from .service import (
    DEFAULT_MAX_NOSTR_FILE,
    JOB_FEEDBACK_KIND,
    JOBS_SUBSCRIPTION,
    NostrFs,
    OutboxState,
)

__all__ = ["DEFAULT_MAX_NOSTR_FILE", "JOBS_SUBSCRIPTION", "JOB_FEEDBACK_KIND", "Event",
           "NostrFs", "OutboxState", "bech32_encode", "bip340_sign", "event_id",
           "filter_matches", "npub_encode", "sign_event", "validate_filters", "verify_event"]
