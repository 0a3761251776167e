"""Switchboard retention: policies, sweeps, legal holds, data-subject requests, receipts."""
