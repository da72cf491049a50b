"""Familienkonferenz: a conference about one family with people of the agencies its consent
covers for case coordination (step 11)."""
