"""Every write of referrals, one module per concern, one function per domain verb:

- steps.py: drafting, sending, approval, the receiving agency's answers, withdrawal;
- transitions.py: the state machine, transition() the only way a state changes;
- permissions.py: the django-guardian object permissions, and the end of a receiving
  agency's access (consent revoked or expired, processing restricted);
- snapshot.py: exactly the data a referral hands over;
- notices.py: whom the steps notify;
- reminders.py: escalation of overdue referrals and the weekly digest;
- erasure.py: a family's referrals erased (GDPR Art. 17)."""
