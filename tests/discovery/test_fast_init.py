"""discovery/fast_init.py: the faster __init__ behaves as the dataclass's own."""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from typing import Any

import pytest

from discovery.fast_init import fast_init
from discovery.model import Endpoint, EndpointPort, EndpointSlice, Service, ServicePort
from discovery.model_meta import ObjectMeta
from discovery.snapshot import EndpointInfo, ServicePortInfo


@dataclass(frozen=True, slots=True)
class Plain:
    a: str
    b: int = 3
    c: dict[str, int] = field(default_factory=dict)


@fast_init
@dataclass(frozen=True, slots=True)
class Fast:
    a: str
    b: int = 3
    c: dict[str, int] = field(default_factory=dict)


@pytest.mark.parametrize(
    "args, kwargs",
    [(("x",), {}), (("x", 4), {}), (("x", 4, {"k": 1}), {}), ((), {"a": "y", "c": {}})],
)
def test_same_fields_as_the_dataclass_init(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    assert dataclasses.astuple(Fast(*args, **kwargs)) == dataclasses.astuple(Plain(*args, **kwargs))


def test_same_errors_fresh_factories_and_still_frozen() -> None:
    assert Fast("x").c is not Fast("x").c  # a new dict each time, as default_factory does
    untyped: Any = Fast
    for args, kwargs in (((), {}), (("x", 1, {}, 2), {}), (("x",), {"d": 1}), (("x",), {"a": "y"})):
        with pytest.raises(TypeError):
            untyped(*args, **kwargs)
    with pytest.raises(dataclasses.FrozenInstanceError):
        Fast("x").a = "y"  # type: ignore[misc]
    assert Fast("x", 1) == Fast("x", 1) and Fast("x", 1) != Fast("x", 2)


@pytest.mark.parametrize(
    "cls",
    [
        ObjectMeta,
        Service,
        ServicePort,
        Endpoint,
        EndpointPort,
        EndpointSlice,
        EndpointInfo,
        ServicePortInfo,
    ],
)
def test_model_classes_keep_their_parameters(cls: type[Any]) -> None:
    """Same names, order and defaults as the dataclass's declared fields."""
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    assert [p.name for p in params] == [f.name for f in dataclasses.fields(cls)]
    for p, f in zip(params, dataclasses.fields(cls), strict=True):
        if f.default is not dataclasses.MISSING:
            assert p.default == f.default, f.name
        elif f.default_factory is dataclasses.MISSING:
            assert p.default is inspect.Parameter.empty, f.name


def test_refuses_classes_it_cannot_speed_up() -> None:
    @dataclass(slots=True)
    class Mutable:
        a: int

    @dataclass(frozen=True, slots=True)
    class Post:
        a: int

        def __post_init__(self) -> None:
            pass

    @dataclass(frozen=True, slots=True)
    class KwOnly:
        a: int = field(kw_only=True)

    for cls in (Mutable, Post, KwOnly):
        with pytest.raises(TypeError):
            fast_init(cls)
