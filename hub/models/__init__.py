"""All models, imported here so that ``Base.metadata`` knows every table."""

from hub.models.base import Base
from hub.models.crm import (
    FREE_CHOICE_FIELDS,
    FREE_TEXT_FIELDS,
    Activity,
    Choice,
    ChoiceField,
    Contact,
    Document,
    EmailAddress,
    FieldLabel,
    PhoneNumber,
    Project,
    Relation,
    RelationKind,
    RelationStatus,
)
from hub.models.jobs import ImportJob, JobStatus
from hub.models.users import ApiToken, LoginFailure, User, UserGroup

__all__ = [
    "FREE_CHOICE_FIELDS",
    "FREE_TEXT_FIELDS",
    "Activity",
    "ApiToken",
    "Base",
    "Choice",
    "ChoiceField",
    "Contact",
    "Document",
    "EmailAddress",
    "FieldLabel",
    "ImportJob",
    "JobStatus",
    "LoginFailure",
    "PhoneNumber",
    "Project",
    "Relation",
    "RelationKind",
    "RelationStatus",
    "User",
    "UserGroup",
]
