"""Exposing a component's method on the object that owns the component, signature and all."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

__all__ = ["delegate"]

P = ParamSpec("P")
R = TypeVar("R")


class delegate(Generic[P, R]):
    """``name = delegate("_component", Component.name)``: ``owner.name(...)`` calls
    ``owner._component.name(...)``, and type checkers see ``Component.name``'s signature."""

    def __init__(self, component: str, method: Callable[Concatenate[Any, P], R]) -> None:
        self._component = component
        self._name = method.__name__
        self.__doc__ = method.__doc__

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> delegate[P, R]: ...

    @overload
    def __get__(self, instance: object, owner: type[Any]) -> Callable[P, R]: ...

    def __get__(self, instance: object | None, owner: type[Any]) -> Any:
        if instance is None:
            return self
        return getattr(getattr(instance, self._component), self._name)
