"""The platform core: accounts, agencies, families, consent, vault, notifications and the hook
points where the apps above plug in. Imports only the audit trail below it."""
