"""A faster `__init__` for the frozen, slotted dataclasses made by the ten thousand.

The `__init__` that `@dataclass(frozen=True)` writes sets each field through
`object.__setattr__(self, "name", value)` (its own `__setattr__` refuses): a global
lookup, an attribute lookup and a generic attribute store per field, about 120 ns each
here. A slotted class has a descriptor per field whose `__set__` stores directly; the
`__init__` written here calls those, bound once as closure variables: 2-2.5x faster
(an EndpointInfo of 9 fields: 1.8 us -> 0.75 us). A 10,000-service config builds about
110,000 such objects between parsing and the snapshot.

Same parameters, defaults and default factories as the dataclass's own `__init__`; the
class stays frozen (its `__setattr__` is untouched). Only for classes without
`__post_init__`, InitVar, keyword-only or init=False fields: anything else is refused when
the module defining the class is imported.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")
_FACTORY = object()  # marks a parameter whose default comes from a default_factory


def fast_init(cls: type[T]) -> type[T]:
    """Class decorator, above `@dataclass(frozen=True, slots=True)`."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"fast_init: {cls.__name__} is not a frozen, slotted dataclass")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"fast_init: {cls.__name__} has __post_init__")
    env: dict[str, Any] = {"_FACTORY": _FACTORY}
    signature: list[str] = []
    body: list[str] = []
    all_fields = cls.__dataclass_fields__  # type: ignore[attr-defined]
    for f in all_fields.values():
        if f._field_type is not dataclasses._FIELD or not f.init or f.kw_only is True:  # type: ignore[attr-defined]
            raise TypeError(f"fast_init: {cls.__name__}.{f.name} is not a plain field")
        name = f.name
        env[f"_set_{name}"] = cls.__dict__[name].__set__
        if f.default is not dataclasses.MISSING:
            env[f"_default_{name}"] = f.default
            signature.append(f"{name}=_default_{name}")
        elif f.default_factory is not dataclasses.MISSING:
            env[f"_factory_{name}"] = f.default_factory
            signature.append(f"{name}=_FACTORY")
            body.append(f"  if {name} is _FACTORY: {name} = _factory_{name}()")
        else:
            signature.append(name)
        body.append(f"  _set_{name}(self, {name})")
    inner = f" def __init__(self, {', '.join(signature)}):\n" + "\n".join(
        " " + line for line in body or ["  pass"]
    )
    source = f"def _make({', '.join(env)}):\n{inner}\n return __init__\n"
    namespace: dict[str, Any] = {}
    exec(source, {}, namespace)
    init = namespace["_make"](**env)
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = cls.__init__.__doc__  # type: ignore[misc]
    cls.__init__ = init  # type: ignore[method-assign]
    return cls
