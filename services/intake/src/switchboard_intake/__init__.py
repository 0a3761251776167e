"""Switchboard intake: tenant onboarding (R-ONB-1) and call capture (R-CALL-1, R-CALL-2)."""
