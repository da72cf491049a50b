"""Tables of the platform core, one module per subject."""

from dienstweg.models.accounts import (
    AuthenticatorDevice,
    BackupCode,
    BackupCodeDevice,
    EnrolmentLink,
    StaffSession,
    User,
    UserManager,
    hash_backup_code,
    hash_link_token,
    normalize_email,
)
from dienstweg.models.agencies import (
    PUBLIC_KINDS,
    Agency,
    Checked,
    Contact,
    Location,
    Membership,
    MembershipProposal,
    Service,
)
from dienstweg.models.families import (
    CategoryMask,
    Consent,
    DataCategory,
    Evidence,
    Family,
    FamilySearchToken,
    HouseholdMember,
    Purpose,
    category_bit,
)
from dienstweg.models.keys import DataKey
from dienstweg.models.notifications import Notification, OutboxMail
from dienstweg.models.throttle import LoginThrottle

__all__ = [
    "PUBLIC_KINDS",
    "Agency",
    "AuthenticatorDevice",
    "BackupCode",
    "BackupCodeDevice",
    "CategoryMask",
    "Checked",
    "Consent",
    "Contact",
    "DataCategory",
    "DataKey",
    "EnrolmentLink",
    "Evidence",
    "Family",
    "FamilySearchToken",
    "HouseholdMember",
    "Location",
    "LoginThrottle",
    "Membership",
    "MembershipProposal",
    "Notification",
    "OutboxMail",
    "Purpose",
    "Service",
    "StaffSession",
    "User",
    "UserManager",
    "category_bit",
    "hash_backup_code",
    "hash_link_token",
    "normalize_email",
]
