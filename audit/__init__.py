"""The audit trail: append-only events, sealed in signed batches, verifiable by the DPO.

The lowest floor of Dienstweg: it imports nothing of ours, so every app can record through
it (STYLE.md, "Where code lives").
"""
