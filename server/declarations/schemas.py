"""The declaration body: physiological ranges are checked here, and a value outside them is a
422 that names the field."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator


class Symptom(StrEnum):
    fever = "fever"
    cough = "cough"
    sore_throat = "sore_throat"
    runny_nose = "runny_nose"
    fatigue = "fatigue"
    muscle_pain = "muscle_pain"
    headache = "headache"
    loss_of_taste_or_smell = "loss_of_taste_or_smell"
    diarrhea = "diarrhea"
    nausea = "nausea"
    dyspnea = "dyspnea"
    chest_pain = "chest_pain"
    confusion = "confusion"
    bluish_lips = "bluish_lips"


class DeclarationIn(BaseModel):
    """Units: °C, %, beats per minute. At least one measurement or symptom list (may be empty:
    "no symptoms" is a declaration too)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    measured_at: AwareDatetime
    #: A living person's body temperature; outside 34–43 °C is a typing or device error.
    temperature_c: float | None = Field(None, ge=34.0, le=43.0)
    #: Pulse oximeters read 70–100 %; below 70 % they are unreliable.
    spo2: int | None = Field(None, ge=70, le=100)
    heart_rate: int | None = Field(None, ge=30, le=220)
    symptoms: list[Symptom] = Field(default_factory=list, max_length=len(Symptom))
    note: str | None = Field(None, max_length=2000)

    @field_validator("symptoms")
    @classmethod
    def _unique(cls, value: list[Symptom]) -> list[Symptom]:
        if len(set(value)) != len(value):
            raise ValueError("each symptom at most once")
        return value
