"""Data keys of the envelope encryption: one per family (and per staff account, for
second-factor secrets), stored only wrapped by a versioned master key."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class DataKey(models.Model):
    """A 256-bit key, wrapped (AES-GCM) by master key `master_version`.

    Deleting the row is crypto-shredding: every ciphertext made with it, backups
    included, can no longer be read."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    master_version = models.PositiveIntegerField()
    wrapped = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["master_version"])]

    def __str__(self) -> str:
        return f"DataKey {self.id} (v{self.master_version})"
