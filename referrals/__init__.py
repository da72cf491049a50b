"""Referrals between agencies: the steps and their rules, guardian permissions, the shared
snapshot, notices, reminders and erasure of cases."""
