"""Request bodies of the people API, validated with pydantic (422 names the failing field)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from server.core.enums import Category

PHONE = r"^\+?[0-9][0-9 .-]{7,18}[0-9]$"
NATIONAL_ID = r"^[0-9]{9}([0-9]{3})?$"  # CMND (9 digits) or CCCD (12 digits)
#: Absolute bounds of isolation dates (the clock-relative bound is in ``flows.enrol_person``).
EARLIEST_ISOLATION = datetime(2020, 1, 1, tzinfo=UTC)
LATEST_ISOLATION = datetime(2100, 1, 1, tzinfo=UTC)


def is_known_zone(name: str) -> bool:
    """An IANA zone this machine knows (``Mars/Olympus`` and ``../../etc/passwd`` are not)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def plausible_moment(value: datetime | None) -> datetime | None:
    """A timestamp a client may send: between 2020 and 2100 in UTC (year 1 with a +23:59
    offset overflows on the way to the database: a 500, issue 13 finding 6)."""
    if value is None:
        return None
    try:
        utc = as_utc(value)
    except OverflowError:
        utc = None
    if utc is None or not (EARLIEST_ISOLATION <= utc <= LATEST_ISOLATION):
        raise ValueError("the time must lie between 2020 and 2100")
    return value


Comorbidity = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]


class RiskFactors(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comorbidities: list[Comorbidity] = Field(default_factory=list, max_length=20)
    pregnant: bool = False


class PersonCreate(BaseModel):
    """An administrator enrols a person in home isolation."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    full_name: str = Field(min_length=2, max_length=200)
    phone: str = Field(pattern=PHONE)
    date_of_birth: date | None = None
    national_id: str | None = Field(None, pattern=NATIONAL_ID)
    category: Category = Category.f0
    ward_code: str = Field(min_length=1, max_length=32)
    home_address: str = Field(min_length=3, max_length=500)
    #: Both, or neither: then the home position is taken from the phone at activation and
    #: confirmed by staff (``home_source`` ``pending`` until then).
    home_lat: float | None = Field(None, ge=-90, le=90)
    home_lon: float | None = Field(None, ge=-180, le=180)
    geofence_radius_m: float = Field(100.0, ge=20, le=5000)
    timezone: str | None = Field(None, max_length=64)
    isolation_start: AwareDatetime
    isolation_end: AwareDatetime
    risk_factors: RiskFactors = Field(default_factory=RiskFactors)
    max_devices: int = Field(1, ge=1, le=2)

    @model_validator(mode="after")
    def _both_coordinates_or_neither(self) -> PersonCreate:
        if (self.home_lat is None) != (self.home_lon is None):
            raise ValueError("give both home_lat and home_lon, or neither (taken from the phone)")
        return self

    @field_validator("home_lat", "home_lon", "geofence_radius_m", mode="before")
    @classmethod
    def _number_not_boolean(cls, value: Any) -> Any:
        # pydantic's lax floats take true/false as 1.0/0.0: a home at (0, 0) or a 1 m fence
        if isinstance(value, bool):
            raise ValueError("a number is needed, not true/false")
        return value

    @field_validator("date_of_birth")
    @classmethod
    def _plausible_birth(cls, value: date | None) -> date | None:
        if value is not None and not (date(1900, 1, 1) <= value <= date.today()):
            raise ValueError("date of birth must be between 1900-01-01 and today")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None and not is_known_zone(value):
            raise ValueError("unknown IANA time zone, e.g. Asia/Ho_Chi_Minh")
        return value

    @field_validator("isolation_start", "isolation_end")
    @classmethod
    def _plausible_moment(cls, value: datetime) -> datetime:
        # Far-off years overflow date arithmetic downstream (local dates, planning); an
        # isolation is days to weeks around today, which enrol_person checks against the clock.
        try:
            utc = as_utc(value)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+23:59
            utc = None
        if utc is None or not (EARLIEST_ISOLATION <= utc <= LATEST_ISOLATION):
            raise ValueError("isolation dates must lie between 2020 and 2100")
        return value

    @model_validator(mode="after")
    def _period(self) -> PersonCreate:
        if self.isolation_end <= self.isolation_start:
            raise ValueError("isolation_end must be after isolation_start")
        if (self.isolation_end - self.isolation_start).days > 60:
            raise ValueError("an isolation period longer than 60 days is not plausible")
        return self


class HomePosition(BaseModel):
    """The phone's position sent at activation by a person who is at home: proposed as their
    home position, used only once staff confirm it (issue 19)."""

    model_config = ConfigDict(extra="forbid")

    # strict: a JSON number only (true/false are not 1.0/0.0 — the live schemathesis run found
    # ``longitude: false`` accepted); a phone sends numbers, so nothing it sends is refused
    latitude: float = Field(ge=-90, le=90, strict=True)
    longitude: float = Field(ge=-180, le=180, strict=True)
    accuracy_m: float = Field(gt=0, le=5000, strict=True)


class ActivationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: str = Field(min_length=4, max_length=32)
    platform: str | None = Field(None, pattern=r"^(android|ios|web)$")
    push_token: str | None = Field(None, min_length=1, max_length=4096)
    home: HomePosition | None = None


class PushTokenUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    push_token: str = Field(min_length=1, max_length=4096)
    platform: str | None = Field(None, pattern=r"^(android|ios|web)$")


class StaffLogin(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=80)
    password: str = Field(min_length=1, max_length=256)


def as_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


#: How far from today an isolation may start (enrolment is for a current or imminent period).
ISOLATION_START_WINDOW = timedelta(days=60)
