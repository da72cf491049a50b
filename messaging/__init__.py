"""Messaging: threads about a referral, a tag or between colleagues, encrypted messages, read
markers, and the /ws/ consumer that delivers them live."""
