"""Switchboard crm-sync: call notes into each client's CRM, transfer log."""
