"""What the event models look like from outside: the property tests draw the keys the models really use."""

from __future__ import annotations

import typing

from pydantic import BaseModel

from crownstream.schemas.events import EVENT_MODELS


def models_in(annotation: typing.Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation names, through Annotated, unions, lists and dicts."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in models_in(arg)]


def event_field_names() -> list[str]:
    """Every field name of every event model, nested models included (rules, placements, audiences …)."""
    names, todo, seen = set(), list(EVENT_MODELS.values()), set()
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            names.add(name)
            todo += [t for t in models_in(info.annotation) if t not in seen]
    return sorted(names)
