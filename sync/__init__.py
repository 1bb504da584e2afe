"""The sync service between missions (routing, signed transport, record linkage): to come."""
