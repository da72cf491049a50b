"""Tables of the platform core, one module per subject."""

from dienstweg.models.accounts import (
    AuthenticatorDevice,
    BackupCode,
    BackupCodeDevice,
    StaffSession,
    User,
    UserManager,
    hash_backup_code,
    normalize_email,
)
from dienstweg.models.agencies import Agency, Checked, Contact, Location, Membership, Service
from dienstweg.models.keys import DataKey

__all__ = [
    "Agency",
    "AuthenticatorDevice",
    "BackupCode",
    "BackupCodeDevice",
    "Checked",
    "Contact",
    "DataKey",
    "Location",
    "Membership",
    "Service",
    "StaffSession",
    "User",
    "UserManager",
    "hash_backup_code",
    "normalize_email",
]
