"""Dienstweg: consent-gated referrals and messaging between agencies serving the same families."""
