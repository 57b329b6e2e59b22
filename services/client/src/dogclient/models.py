"""Typed results, parsed from the API's JSON (see shared/design/contracts.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError


@dataclass(frozen=True)
class BreedScore:
    breed: str
    probability: float
    class_id: int | None = None


@dataclass(frozen=True)
class Prediction:
    """One image's answer: breeds sorted by probability, highest first.

    ``is_dog`` and ``dog_probability`` are ``None`` when the model cannot tell (a model trained only
    on breeds).
    """

    breeds: list[BreedScore]
    is_dog: bool | None = None
    dog_probability: float | None = None
    model_name: str | None = None
    model_version: str | None = None
    request_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def top(self) -> BreedScore | None:
        return self.breeds[0] if self.breeds else None

    @classmethod
    def from_response(cls, document: Any, status: int = 200) -> Prediction:
        """Parse ``POST /predict``'s body; a body of another shape is an ``invalid_response`` error."""
        try:
            breeds = [
                BreedScore(
                    breed=str(item["breed"]),
                    probability=float(item["probability"]),
                    class_id=None if item.get("class_id") is None else int(item["class_id"]),
                )
                for item in document["predictions"]
            ]
            model = document.get("model") or {}
            dog_probability = document.get("dog_probability")
            is_dog = document.get("is_dog")
            return cls(
                breeds=breeds,
                is_dog=None if is_dog is None else bool(is_dog),
                dog_probability=None if dog_probability is None else float(dog_probability),
                model_name=model.get("name"),
                model_version=model.get("version"),
                request_id=document.get("request_id"),
                raw=document,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ApiError(
                status,
                "invalid_response",
                f"the API's answer is not a prediction ({type(exc).__name__}: {exc})",
            ) from exc

    def to_dict(self) -> dict[str, Any]:
        """The API's own shape, so ``--json`` output and the HTTP response read the same."""
        return {
            "predictions": [
                {"breed": b.breed, "probability": b.probability, "class_id": b.class_id} for b in self.breeds
            ],
            "is_dog": self.is_dog,
            "dog_probability": self.dog_probability,
            "model": {"name": self.model_name, "version": self.model_version},
            "request_id": self.request_id,
        }
