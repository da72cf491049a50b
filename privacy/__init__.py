"""The data-protection officer's console and the data-subject rights (GDPR Art. 15, 17, 18,
30): the top floor, which reads across every app. The trail below it (audit/) imports
nothing of ours; nothing below imports this package."""
