"""Switchboard notify: e-mail and SMS delivery of call notes, consent registry, delivery ledger."""
