"""The provenance log: events, the hash chain and its sealing, and the ledger that runs both."""
