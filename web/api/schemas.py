"""Every shape the API reads or writes, declared once as pydantic models.

The same class validates a request (``extra="forbid"``: an unknown field or parameter is a 400
naming it), shapes a response (``from_attributes``: built straight from the SQLAlchemy object) and
becomes a schema of the OpenAPI document. Input types are strict where JSON has a type of its own:
``"yes"`` is not a boolean, ``"5"`` is not an id, ``null`` is not a string, so an integration learns
about a mistake instead of storing something else.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AliasPath,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StrictBool,
    StrictInt,
    StrictStr,
    WithJsonSchema,
    create_model,
    field_validator,
    model_validator,
)

from hub.models import FREE_TEXT_FIELDS, ChoiceField, RelationKind, RelationStatus
from hub.models.base import in_utc
from hub.paging import MAX_ID

CHOICE_NAMES = [f.value for f in ChoiceField]
FREE_CHOICES = [name for name in CHOICE_NAMES if name.startswith("free_choice_")]
# The database's integer columns: anything bigger would be an overflow error, not "not found".
MAX_INT32 = 2**31 - 1


class Input(BaseModel):
    """A request body or query string: unknown keys are refused, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class Output(BaseModel):
    """A response body, read from the model object's attributes."""

    model_config = ConfigDict(from_attributes=True)


def patch_of(model: type[BaseModel], name: str) -> type[Input]:
    """``model`` with every key optional, for PATCH: only the keys sent change. A key sent as null
    is still checked against its type, so null for a text is refused rather than stored as ""."""
    fields: dict[str, Any] = {
        field: (
            Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation,
            Field(default=None, description=info.description),
        )
        for field, info in model.model_fields.items()
    }
    doc = "The keys to change; the others keep their values."
    return create_model(name, __base__=Input, __doc__=doc, **fields)


# --- field types ----------------------------------------------------------------------------------

Id = Annotated[StrictInt, Field(ge=1, le=MAX_ID)]
OptionalId = Annotated[StrictInt | None, Field(ge=1, le=MAX_ID)]
SmallInt = Annotated[StrictInt, Field(ge=-MAX_INT32, le=MAX_INT32)]
Text = Annotated[StrictStr, Field(max_length=100_000)]
TextList = Annotated[list[Annotated[StrictStr, Field(max_length=1000)]], Field(max_length=1000)]
IdList = Annotated[list[Id], Field(max_length=10_000)]

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_date(value: Any) -> date | None:
    # date.fromisoformat also takes "20260201" and week dates; the API promises YYYY-MM-DD only.
    if value is None or value == "":
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATE.match(value):
        return date.fromisoformat(value)  # ValueError for 2026-02-30: pydantic reports it
    raise ValueError("must be a date (YYYY-MM-DD)")


def _amount(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError('must be an amount such as "1250.00"')
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError('must be an amount such as "1250.00"') from None
    if not amount.is_finite():
        raise ValueError('must be an amount such as "1250.00"')
    return amount


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


InputDate = Annotated[
    date | None,
    PlainValidator(_iso_date),
    WithJsonSchema({"type": ["string", "null"], "format": "date", "description": "YYYY-MM-DD"}),
]
Amount = Annotated[
    Decimal | None,
    PlainValidator(_amount),
    WithJsonSchema({"type": ["string", "number", "null"], "description": 'An amount, such as "1250.00"'}),
]
Moment = Annotated[datetime | None, BeforeValidator(_utc)]


def _since(value: datetime | None) -> datetime | None:
    """A moment to filter by, in UTC (hub.models.base.in_utc: the calendar's edges included)."""
    return None if value is None else in_utc(value)


Since = Annotated[
    datetime | None,
    AfterValidator(_since),
    Field(description="Only what changed at or after this moment (ISO 8601, with a time zone)"),
]
Money = Annotated[
    Decimal | None,
    PlainSerializer(lambda v: None if v is None else f"{v:.2f}", return_type=str | None),
    WithJsonSchema({"type": ["string", "null"], "description": 'Two decimals, such as "1250.00"'}),
]


def _numbers(values: Any) -> list[str]:
    return [v if isinstance(v, str) else v.number for v in values]


def _addresses(values: Any) -> list[str]:
    return [v if isinstance(v, str) else v.address for v in values]


def _ids(values: Any) -> list[int]:
    return [v if isinstance(v, int) else v.id for v in values]


def _lines(value: Any) -> list[str]:
    return value.splitlines() if isinstance(value, str) else list(value)


Phones = Annotated[list[str], BeforeValidator(_numbers)]
Addresses = Annotated[list[str], BeforeValidator(_addresses)]
Ids = Annotated[list[int], BeforeValidator(_ids)]
Lines = Annotated[list[str], BeforeValidator(_lines)]


class ErrorDetail(BaseModel):
    message: str
    field: str | None = Field(description="The input field at fault, if one")
    fields: dict[str, str] | None = Field(
        default=None, description="Every field at fault and its message (bad input only)"
    )


class Error(BaseModel):
    """Every error: 400, 401, 404, 405, 412 (If-Match names an older version), 413."""

    error: ErrorDetail


# --- paging ---------------------------------------------------------------------------------------


class ListQuery(Input):
    cursor: str | None = Field(default=None, max_length=2000, description="The `next` cursor of the page before")
    per_page: int = Field(default=25, ge=1, le=100, description="Items per page")
    total: bool = Field(default=False, description="1: also count every matching item (costs a COUNT)")
    page: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="Page number, for integrations written before cursors (slower the further it goes)",
    )


class Paged(Output):
    next: str | None = Field(description="The cursor of the next page (pass as ?cursor=); null on the last page")
    total: int | None = Field(default=None, description="Every matching item, when ?total=1")
    per_page: int
    page: int | None = Field(default=None, description="The page number, when asked for by ?page=")
    has_next: bool = Field(description="Whether there is a next page (`next` is its cursor)")


# --- users ----------------------------------------------------------------------------------------


class UserOut(Output):
    id: int
    name: str
    email: str
    active: bool = Field(validation_alias="is_active")


class Me(UserOut):
    is_admin: bool


class UserQuery(ListQuery):
    active: bool | None = Field(default=None, description="1: only active users, 0: only deactivated ones")


class UserPage(Paged):
    items: list[UserOut]


# --- relations and contacts -----------------------------------------------------------------------


class RelationCreate(Input):
    """A new relation."""

    kind: RelationKind = RelationKind.company
    name: Annotated[StrictStr, Field(max_length=300)]
    street: Text = ""
    postcode: Text = ""
    city: Text = ""
    country: Text = Field(default="", description="Two-letter code, such as NL")
    phones: TextList = []
    emails: TextList = []
    website: Text = ""
    coc_number: Text = ""
    vat_number: Text = ""
    status: RelationStatus = RelationStatus.lead
    owner_id: OptionalId = Field(default=None, description="The owner; you, unless given")
    domain: Text = Field(default="", description="The company's mail domain; mail from it is filed here")


RelationPatch = patch_of(RelationCreate, "RelationPatch")


class TagRef(Output):
    """A tag on a relation or contact (GET /tags lists them all)."""

    id: int
    name: str
    colour: str = Field(description='"#rrggbb", or "" for none')


class RelationSummary(Output):
    id: int
    kind: RelationKind
    name: str
    city: str
    status: RelationStatus
    owner_id: int | None
    updated_at: Moment


class Relation(RelationSummary):
    street: str
    postcode: str
    country: str
    phones: Phones
    emails: Addresses
    website: str
    coc_number: str
    vat_number: str
    domain: str
    linked_user_ids: Ids = Field(validation_alias="linked_users")
    linked_group_ids: Ids = Field(validation_alias="linked_groups")
    version: int = Field(description="Raised by every change; the ETag. Send it as If-Match to change or delete")
    tags: list[TagRef] = Field(default=[], description="Its tags, by name")


class RelationQuery(ListQuery):
    q: str = Field(default="", max_length=200, description="Search text (name)")
    status: RelationStatus | None = Field(default=None, description="Only relations with this status")
    owner_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="Only relations this user owns")
    city: str | None = Field(default=None, max_length=100, description="Only relations in this city")
    updated_since: Since = None
    sort: Literal["name", "-name", "city", "-city", "status", "-status", "updated", "-updated"] = "name"
    tag: str | None = Field(default=None, max_length=200, description="Only relations with this tag, by id or name")


class RelationPage(Paged):
    items: list[RelationSummary]


class ContactFields(Input):
    name: Annotated[StrictStr, Field(max_length=300)]
    function: Text = ""
    emails: TextList = []
    phones: TextList = []


ContactPatch = patch_of(ContactFields, "ContactPatch")


class Contact(Output):
    id: int
    relation_id: int
    name: str
    function: str
    emails: Addresses
    phones: Phones
    version: int = Field(description="Raised by every change; the ETag. Send it as If-Match to change or delete")
    tags: list[TagRef] = Field(default=[], description="Its tags, by name")


class Contacts(Output):
    items: list[Contact]


class ContactNoteFields(Input):
    kind: Literal["note", "visit"] = Field(default="note", description="note (conversation) or visit (visit report)")
    date: Annotated[
        date,
        PlainValidator(_iso_date),
        WithJsonSchema({"type": "string", "format": "date", "description": "YYYY-MM-DD"}),
    ]
    text: Annotated[StrictStr, Field(min_length=1, max_length=50_000)]


class ContactNote(Output):
    id: int
    contact_id: int
    kind: str
    date: date
    author_id: int | None = Field(description="Who wrote it; only they and admins change it")
    text: str
    created_at: Moment
    updated_at: Moment
    version: int = Field(description="Raised by every change")


class ContactNotes(Output):
    items: list[ContactNote]


class Linked(Input):
    """Who sees a project or relation; nobody linked: all staff."""

    user_ids: IdList = []
    group_ids: IdList = []


class LinkedOut(Output):
    user_ids: Ids = Field(validation_alias="linked_users")
    group_ids: Ids = Field(validation_alias="linked_groups")


# --- projects -------------------------------------------------------------------------------------


class ChoiceRef(Output):
    """The chosen option of a company-defined dropdown."""

    id: int
    name: str


class ChoiceRefInput(Input):
    model_config = ConfigDict(extra="ignore")  # {"id", "name"} as GET returns it; the name is ignored
    id: Id


# A choice by id, by its name (as the dropdown shows it), as GET returns it ({"id": …}), or null.
ChoiceInput = Annotated[
    Id | Annotated[StrictStr, Field(min_length=1, max_length=200)] | ChoiceRefInput | None,
    Field(
        default=None, description='A choice of this dropdown: its id, its name, {"id": …} as GET returns it, or null'
    ),
]

_PROJECT_FIELDS: dict[str, Any] = {
    "relation_id": (Id, Field(description="A relation you may see")),
    "name": (Annotated[StrictStr, Field(max_length=300)], ...),
    "description": (Text, ""),
    "contact_ids": (IdList, Field(default=[], description="Contacts of the relation")),
    "one_off_contact_name": (Text, ""),
    "one_off_contact_email": (Text, ""),
    "one_off_contact_phone": (Text, ""),
    "start_date": (InputDate, None),
    "end_date": (InputDate, None),
    "end_date_expected": (StrictBool, False),
    "responsible_user_id": (OptionalId, Field(default=None, description="You, unless given")),
    "value": (Amount, None),
    "currency": (Text, Field(default="", description="Three-letter code, such as EUR; the default currency if empty")),
    "closed": (StrictBool, False),
    **{name: (Text, "") for name in FREE_TEXT_FIELDS},
    **{name: (ChoiceInput, None) for name in CHOICE_NAMES},
    # The id spelling of a dropdown (chance_id) is the same field as its plain name (chance).
    **{f"{name}_id": (ChoiceInput, None) for name in CHOICE_NAMES},
}

ProjectCreate: type[Input] = create_model("ProjectCreate", __base__=Input, __doc__="A new project.", **_PROJECT_FIELDS)
ProjectPatch = patch_of(ProjectCreate, "ProjectPatch")


class ContactRef(Output):
    id: int
    name: str


class OneOffContact(Output):
    name: str
    email: str
    phone: str


class ProjectSummary(Output):
    id: int
    relation_id: int
    relation_name: str = Field(validation_alias=AliasPath("relation", "name"))
    name: str
    start_date: date | None
    end_date: date | None
    end_date_expected: bool
    responsible_user_id: int | None
    value: Money
    currency: str
    closed: bool
    updated_at: Moment
    type: ChoiceRef | None
    status: ChoiceRef | None


class _Derived:
    """An object's attributes plus a few computed ones, for ``from_attributes`` validation."""

    def __init__(self, obj: Any, **extra: Any) -> None:
        self._obj, self._extra = obj, extra

    def __getattr__(self, name: str) -> Any:
        return self._extra[name] if name in self._extra else getattr(self._obj, name)


class Project(ProjectSummary):
    # Spelled out rather than generated from FREE_TEXT_FIELDS / ChoiceField so type checkers see them.
    free_text_1: str
    free_text_2: str
    free_text_3: str
    free_text_4: str
    chance: ChoiceRef | None
    free_choice_1: ChoiceRef | None
    free_choice_2: ChoiceRef | None
    free_choice_3: ChoiceRef | None
    free_choice_4: ChoiceRef | None
    free_choice_5: ChoiceRef | None
    description: str
    contacts: list[ContactRef]
    one_off_contact: OneOffContact
    notepad: str
    notepad_updated_at: Moment
    notepad_updated_by_id: int | None
    notepad_version: int = Field(description="The notepad's own version: If-Match when replacing the notepad")
    linked_user_ids: Ids = Field(validation_alias="linked_users")
    linked_group_ids: Ids = Field(validation_alias="linked_groups")
    version: int = Field(description="Raised by every change; the ETag. Send it as If-Match to change or delete")

    @model_validator(mode="before")
    @classmethod
    def _from_project(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return data
        contact = {
            "name": data.one_off_contact_name,
            "email": data.one_off_contact_email,
            "phone": data.one_off_contact_phone,
        }
        return _Derived(data, one_off_contact=contact)


class ProjectQuery(ListQuery):
    q: str = Field(default="", max_length=200, description="Search text (project or relation name)")
    relation_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="Only this relation's projects")
    responsible_user_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="Only this user's projects")
    status: str | None = Field(default=None, max_length=200, description="A status choice, by id or name")
    type: str | None = Field(default=None, max_length=200, description="A type choice, by id or name")
    chance: str | None = Field(default=None, max_length=200, description="A chance choice, by id or name")
    open: bool = Field(default=False, description="1: only projects not closed")
    updated_since: Since = None
    sort: Literal[
        "name",
        "-name",
        "start",
        "-start",
        "end",
        "-end",
        "value",
        "-value",
        "updated",
        "-updated",
        "relation",
        "-relation",
    ] = "-updated"


class ProjectPage(Paged):
    items: list[ProjectSummary]


class NotepadInput(Input):
    text: Text


class Notepad(Output):
    text: str = Field(validation_alias="notepad")
    updated_at: Moment = Field(validation_alias="notepad_updated_at")
    updated_by_id: int | None = Field(validation_alias="notepad_updated_by_id")
    version: int = Field(validation_alias="notepad_version", description="The notepad's version; the ETag")


# --- activities and documents ---------------------------------------------------------------------


class ActivityFields(Input):
    title: Annotated[StrictStr, Field(max_length=300)]
    description: Text = ""
    due_date: InputDate = None
    assigned_user_id: OptionalId = Field(default=None, description="You, unless given")
    done: StrictBool = False


ActivityPatch = patch_of(ActivityFields, "ActivityPatch")


class Activity(Output):
    id: int
    project_id: int
    title: str
    description: str
    due_date: date | None
    done: bool
    done_at: Moment
    assigned_user_id: int | None
    version: int = Field(description="Raised by every change; the ETag. Send it as If-Match to change or delete")


class Activities(Output):
    items: list[Activity]


class MineQuery(Input):
    done: bool = Field(default=False, description="1 includes finished activities")


class Upload(Input):
    file: Annotated[Any, WithJsonSchema({"type": "string", "format": "binary"})]


class Document(Output):
    id: int
    project_id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    uploaded_by_id: int | None
    uploaded_at: Moment


class Documents(Output):
    items: list[Document]


# --- choices and labels ---------------------------------------------------------------------------


class ChoiceFields(Input):
    field: ChoiceField
    name: Annotated[StrictStr, Field(max_length=200)]
    sort_order: SmallInt = 0
    active: StrictBool = True


ChoicePatch = patch_of(ChoiceFields, "ChoicePatch")


class Choice(Output):
    id: int
    field: ChoiceField
    name: str
    sort_order: int
    active: bool


class Choices(Output):
    items: list[Choice]


class ChoiceQuery(Input):
    field: ChoiceField | None = Field(default=None, description="Only this dropdown's choices")


_LABELS = (*FREE_TEXT_FIELDS, *FREE_CHOICES)
FieldLabelsInput: type[Input] = create_model(  # type: ignore[call-overload]
    "FieldLabelsInput",
    __base__=Input,
    __doc__="Free fields to rename: free_text_1..4, free_choice_1..5.",
    **{name: (Annotated[StrictStr, Field(max_length=200)], None) for name in _LABELS},
)
FieldLabels: type[Output] = create_model(  # type: ignore[call-overload]
    "FieldLabels", __base__=Output, __doc__="Each free field's label.", **{name: (str, ...) for name in _LABELS}
)


# --- mail -----------------------------------------------------------------------------------------


class EmailSummary(Output):
    id: int
    message_id: str
    subject: str
    from_address: str
    from_name: str
    sent_at: Moment
    thread_key: str
    has_attachments: bool
    size: int


class Participant(Output):
    role: str
    address: str = Field(validation_alias="address_key")
    name: str
    contact_id: int | None
    relation_id: int | None


class AttachmentOut(Output):
    id: int
    filename: str
    content_type: str
    size: int


class Email(EmailSummary):
    text_body: str
    problems: Any
    # "" for ordinary mail, else bounce, complaint, auto_reply or invitation, with what was read of it.
    kind: str
    details: dict[str, Any]
    participants: list[Participant]
    attachments: list[AttachmentOut]

    @field_validator("details", mode="before")
    @classmethod
    def _details_from_json(cls, value: Any) -> Any:
        """Stored as JSON text on the e-mail row."""
        if isinstance(value, str):
            return json.loads(value) if value else {}
        return value


class EmailQuery(ListQuery):
    q: str = Field(default="", max_length=200, description="Search text (subject, sender)")
    message_id: str = Field(default="", max_length=1000, description="Find one message by its Message-ID")
    relation_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="Only this relation's e-mails")
    project_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="Only this project's e-mails")
    contact_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="Only e-mails to or from this contact")
    mailbox_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="Only e-mails from this mailbox")
    sent_since: Since = Field(default=None, description="Only e-mails sent at or after this moment (ISO 8601)")
    sent_before: Since = Field(default=None, description="Only e-mails sent before this moment (ISO 8601)")


class ProjectEmailQuery(ListQuery):
    q: str = Field(default="", max_length=200, description="Search text (subject, sender)")


class EmailPage(Paged):
    items: list[EmailSummary]


Security = Literal["none", "starttls", "ssl"]
Sharing = Literal["only_me", "colleagues"]


class MailboxInput(Input):
    host: Annotated[StrictStr, Field(max_length=255)]
    port: Annotated[StrictInt, Field(ge=1, le=65535)]
    security: Security = "ssl"
    username: Annotated[StrictStr, Field(max_length=255)]
    password: Annotated[StrictStr, Field(max_length=1000, json_schema_extra={"writeOnly": True})]
    owner_id: OptionalId = Field(default=None, description="Admins only; null is a shared mailbox")
    name: Text = ""
    folders: TextList = []
    sync_since: InputDate = None
    poll_interval_seconds: Annotated[StrictInt, Field(ge=1, le=MAX_INT32)] = 300
    sharing: Sharing = Field(
        default="only_me",
        description="Personal mailboxes: only the owner, or also colleagues who may see the linked relation or project",
    )
    never_share: TextList = Field(default=[], description="Addresses and domains whose mail is never shared")


class Progress(BaseModel):
    done: int
    total: int


class Mailbox(BaseModel):
    """A mailbox and its sync health, as the caller may read it; never the password."""

    id: int
    name: str
    owner_id: int | None
    host: str
    port: int
    security: Security
    username: str
    folders: Lines
    sync_since: date | None
    poll_interval_seconds: int
    sharing: Sharing
    never_share: Lines
    last_success_at: Moment
    last_error: str | None
    failing: bool
    stalled: bool
    state: Literal["syncing", "ok", "waiting_first", "waiting_for_worker", "failing", "stalled", "paused"]
    state_words: str
    progress: Progress
    messages_stored: int
    backlog: int

    @field_validator("security", mode="before")
    @classmethod
    def _enum_value(cls, value: Any) -> Any:
        return getattr(value, "value", value)


class Mailboxes(BaseModel):
    items: list[Mailbox]


class Check(Output):
    ok: bool
    words: str


class CalendarAccountOut(Output):
    """A staff member's calendar and its sync state, in plain words; never the password."""

    id: int
    owner_id: int
    delivery: Literal["caldav", "invitations"]
    calendar_name: str
    state: str = Field(description="syncing, ok, waiting_first, waiting_for_worker, failing, stalled or paused")
    state_words: str
    last_push_at: Moment
    last_pull_at: Moment
    last_error: str
    pending: int = Field(description="Appointments waiting to be written into (or removed from) the calendar")


class MailingHealth(Output):
    """A scheduled, sending or paused mailing as a unit of background work."""

    id: int
    name: str
    state: str = Field(description="The mailing's own state: scheduled, sending or paused")
    health: str = Field(description="syncing, ok, waiting_first, waiting_for_worker, failing, stalled or paused")
    health_words: str
    sent: int
    total: int


class Health(BaseModel):
    """The installation's parts and each mailbox and calendar the caller may manage, in one state each."""

    ok: bool
    database: Check
    broker: Check
    workers: list[str]
    beat: Check
    queues: dict[str, int]
    mailboxes: list[Mailbox]
    calendars: list[CalendarAccountOut]
    mailings: list[MailingHealth]


class Queued(BaseModel):
    queued: bool


# --- telephony ------------------------------------------------------------------------------------

CallDirection = Literal["inbound", "outbound", "internal"]
CallOutcome = Literal["answered", "missed", "busy", "failed", "voicemail"]


class Call(Output):
    """One conversation, however many legs the phone system wrote for it. Times are UTC."""

    id: int
    source: str = Field(validation_alias=AliasPath("source", "name"), description="The phone system's name")
    call_key: str = Field(description="The phone system's own key of the call (unique per source)")
    direction: CallDirection
    number: str = Field(description="The outside number as the phone system gave it (empty: anonymous or internal)")
    e164: str = Field(description="The outside number in E.164 (empty if it is not a phone number)")
    started_at: Moment
    answered_at: Moment
    ended_at: Moment
    duration: int = Field(description="Seconds from start to end")
    billable_seconds: int = Field(validation_alias="billsec", description="Seconds talked")
    outcome: CallOutcome | Literal[""] = Field(description="Empty while a webhook call is still in progress")
    user_id: int | None = Field(description="The staff member whose extension took or made the call")
    extension: str
    recording_url: str
    contact_id: int | None
    relation_id: int | None
    project_id: int | None


class CallQuery(ListQuery):
    source: str | None = Field(default=None, max_length=100, description="Only calls of this phone system (its name)")
    relation_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="Only this relation's calls")
    contact_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="Only calls with this contact")
    project_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="Only this project's calls")
    user_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="Only calls this user took or made")
    direction: CallDirection | None = Field(default=None, description="Only calls in this direction")
    outcome: CallOutcome | None = Field(default=None, description="Only calls with this outcome")
    since: Since = Field(default=None, description="Only calls started at or after this moment (ISO 8601)")


class CallPage(Paged):
    items: list[Call]


class CallerIdQuery(Input):
    number: str = Field(min_length=1, max_length=80, description="The calling number, as the phone shows it")


class NamedRef(Output):
    id: int
    name: str


class CallerId(Output):
    """Who is calling. Unknown, anonymous, ambiguous and not visible to you all answer found: false."""

    found: bool
    number: str | None = Field(description="The number in E.164 (null: not a phone number)")
    name: str = Field(description="What a phone shows: the contact and relation, or the relation (empty if unknown)")
    contact: NamedRef | None
    relation: NamedRef | None
    url: str | None = Field(description="The relation's page in hub")


class ThreeCxQuery(Input):
    number: str = Field(min_length=1, max_length=80, description="[Number] as 3CX sends it")


class ThreeCxContact(BaseModel):
    """A contact as the 3CX CRM template reads it (Variables Path="contacts.…")."""

    id: str = Field(description="contact-<id>, or relation-<id> for a number of the relation itself")
    firstName: str  # 3CX's spelling, as its template reads it
    lastName: str
    companyName: str
    email: str
    phoneBusiness: str
    url: str = Field(description="The relation's page in hub (3CX's ContactUrl)")
    entityType: Literal["Contacts"] = "Contacts"


class ThreeCxContacts(BaseModel):
    """3CX's "Phone Number Matching" scenario: no contacts means unknown (Rule Type="Any" contacts.id)."""

    contacts: list[ThreeCxContact]


class WebhookResult(Output):
    legs: int = Field(description="Call legs the request carried")
    imported: int = Field(description="Calls stored for the first time")
    known: int = Field(description="Legs of calls already stored (a retry or a later event of the same call)")
    rejected: list[str] = Field(description="Records that could not be read, with the reason")


# --- search ---------------------------------------------------------------------------------------

SearchKind = Literal["contacts", "relations", "projects", "emails"]


class SearchQuery(Input):
    q: str = Field(
        default="",
        max_length=200,
        description="Search text: a name, e-mail address, phone number (any notation), KvK or VAT number, city, "
        "project number (P-123) or free-field value, e-mail subject or sender",
    )
    kind: SearchKind | None = Field(default=None, description="Only this kind (needed to page on with cursor)")
    cursor: str | None = Field(default=None, max_length=2000, description="The `next` cursor of a kind (with kind)")
    per_page: int = Field(default=10, ge=1, le=100, description="Items per kind")


class SearchHit(Output):
    id: int
    title: str = Field(description="Name, or an e-mail's subject")
    detail: str = Field(description="The relation's name (contact, project), the city (relation), the sender (e-mail)")
    relation_id: int | None = Field(description="The relation it belongs to (null for an e-mail)")
    sent_at: Moment = Field(default=None, description="When an e-mail was sent")


class SearchGroup(Output):
    kind: SearchKind
    total: int = Field(description="Every match of this kind you may see, counted up to 100 (see total_capped)")
    total_capped: bool = Field(
        default=False,
        description="More than 100 match: total is 100, a lower bound; every match is still reached by "
        "paging (exact, then starting with the text, then a word starting with it, then the rest)",
    )
    items: list[SearchHit] = Field(description="Exact matches first, then names starting with the text, then the rest")
    next: str | None = Field(description="The cursor of this kind's next page (pass with kind=); null on the last")


class SearchResults(Output):
    q: str = Field(description="The text searched for (control characters removed)")
    groups: list[SearchGroup]


# --- tags -----------------------------------------------------------------------------------------


class TagQuery(ListQuery):
    q: str = Field(default="", max_length=200, description="Part of the name (capitals and accents ignored)")


class Tag(TagRef):
    relations: int = Field(description="Relations you may see with this tag")
    contacts: int = Field(description="Contacts you may see with this tag")


class TagPage(Paged):
    items: list[Tag]


class TagsInput(Input):
    """Tags to put on a relation or contact: a tag's id, or a name (a name that is no tag yet becomes one;
    capitals and accents do not make another tag)."""

    tags: Annotated[
        list[Id | Annotated[StrictStr, Field(min_length=1, max_length=200)]], Field(min_length=1, max_length=100)
    ]


class TagRefs(Output):
    items: list[TagRef]
