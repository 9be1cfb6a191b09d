"""The OpenAPI document, generated from the same msgspec types that decode every request.

Litestar's own schema for a msgspec Struct loses much of what msgspec checks: that unknown
fields are refused, the bounds of a field that may be left out, the constraints of the items
of a list and of the keys and values of a dict. Each Struct's schema is built here instead from
``msgspec.inspect``, the description msgspec itself validates against, so that the document
states what the server enforces:

* a Struct that forbids unknown fields has ``additionalProperties: false``;
* every bound of every type, however deeply nested, and every default;
* a string is documented with its pattern, or with ``NO_NUL`` (``api/request_checks.py``
  refuses a NUL in any string);
* a dict with integer keys (an order line id per quantity) has ``propertyNames``: the decimal
  integers within the keys' bounds, exactly as msgspec reads them;
* a type the document cannot state is an error when the document is built, never a silent
  ``{}``.

Nested Structs and enums become components through Litestar's registry, which names them.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Callable
from typing import Any, get_args, get_origin

import msgspec
import msgspec.inspect as mi
from litestar._openapi.schema_generation import SchemaCreator
from litestar.openapi.spec import OpenAPIFormat, OpenAPIType, Reference, Schema
from litestar.plugins import OpenAPISchemaPlugin
from litestar.typing import FieldDefinition

from emall.structs import END, NO_NUL

SchemaOrRef = Schema | Reference

_FORMATS: dict[type[mi.Type], OpenAPIFormat] = {
    mi.DateTimeType: OpenAPIFormat.DATE_TIME,
    mi.DateType: OpenAPIFormat.DATE,
    mi.TimeType: OpenAPIFormat.TIME,
    mi.UUIDType: OpenAPIFormat.UUID,
}
# the keys of msgspec.Meta's json-schema extras that the document carries over
_EXTRA_KEYS = {"title": "title", "description": "description", "examples": "examples"}
# and the extras that describe what a later check enforces (emall.listings.models.Specs)
_EXTRA_SCHEMAS = {"additionalProperties": "additional_properties"}


def integer_pattern(low: int, high: int) -> str:
    """A regex of exactly the decimal integers from ``low`` (0 or 1) to ``high``, written as
    msgspec reads an integer key: no sign, no leading zero."""
    if low not in (0, 1) or high < 1:
        raise ValueError(f"no key pattern for integers {low}..{high}")
    digits = str(high)
    width = len(digits)
    options = []
    if width > 1:  # every shorter number
        options.append(f"[1-9][0-9]{{0,{width - 2}}}" if width > 2 else "[1-9]")
    for i, digit in enumerate(digits):  # same width: a smaller digit after an equal prefix
        smallest = 1 if i == 0 else 0
        if int(digit) > smallest:
            top = int(digit) - 1
            span = str(smallest) if top == smallest else f"{smallest}-{top}"
            rest = width - i - 1
            options.append(digits[:i] + f"[{span}]" + (f"[0-9]{{{rest}}}" if rest else ""))
    options.append(digits)
    if low == 0:
        options.append("0")
    return f"^(?:{'|'.join(options)}){END}"


def _title(annotation: Any) -> str:
    """``OfferRead``; a generic Struct as ``Page[OfferRead]`` (titles must be unique: a client
    generator names its classes after them)."""
    origin = get_origin(annotation)
    if origin is None:
        return str(annotation.__name__)
    return f"{origin.__name__}[{', '.join(_title(arg) for arg in get_args(annotation))}]"


def _doc(cls: type) -> str | None:
    own = cls.__dict__.get("__doc__")
    return inspect.cleandoc(own) if own else None


class StructSchemaPlugin(OpenAPISchemaPlugin):
    """Schemas of msgspec Structs, as msgspec decodes them (placed before Litestar's own)."""

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        return not field_definition.is_union and field_definition.is_subclass_of(msgspec.Struct)

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        info = mi.type_info(field_definition.annotation)
        if not isinstance(info, mi.StructType) or info.array_like:
            raise TypeError(f"cannot document {field_definition.annotation!r} as an object")
        # registered before its fields, so that a Struct may refer to itself
        schema = schema_creator.schema_registry.get_schema_for_field_definition(field_definition)
        cls = get_origin(field_definition.annotation) or field_definition.annotation
        schema.title = _title(field_definition.annotation)
        schema.description = _doc(cls)
        schema.type = OpenAPIType.OBJECT
        convert = _Converter(schema_creator)
        properties: dict[str, SchemaOrRef] = {}
        required: list[str] = []
        for field in info.fields:
            prop = convert(field.type)
            default = _default(field)
            if default is not msgspec.NODEFAULT:
                prop = _with(prop, default=default)
            properties[field.encode_name] = prop
            if field.required:
                required.append(field.encode_name)
        if info.tag_field is not None:
            properties[info.tag_field] = Schema(const=info.tag)
            required.append(info.tag_field)
        schema.properties = properties
        schema.required = sorted(required)
        if info.forbid_unknown_fields:
            schema.additional_properties = False
        return schema


def _default(field: mi.Field) -> Any:
    if field.default is not msgspec.NODEFAULT:
        value = field.default
    elif field.default_factory is not msgspec.NODEFAULT:
        value = field.default_factory()
    else:
        return msgspec.NODEFAULT
    if value is None or value is msgspec.UNSET:
        return msgspec.NODEFAULT  # null is not worth stating; a left-out field is no value
    return msgspec.to_builtins(value)


def _with(schema: SchemaOrRef, **values: Any) -> SchemaOrRef:
    """``schema`` with more keywords; a reference is wrapped, as OpenAPI 3.1 allows."""
    if isinstance(schema, Reference):
        return Schema(all_of=[schema], **values)
    for key, value in values.items():
        setattr(schema, key, value)
    return schema


def _plain_schema(value: dict[str, Any]) -> Schema:
    """A schema written out in a Meta's extras: a type (or several) and a pattern."""
    if set(value) - {"type", "pattern"}:
        raise TypeError(f"an extra schema may give type and pattern only: {value!r}")
    kinds = value["type"]
    return Schema(
        type=[OpenAPIType(k) for k in kinds] if isinstance(kinds, list) else OpenAPIType(kinds),
        pattern=value.get("pattern"),
    )


class _Converter:
    """One msgspec type as a schema; Structs and enums become components."""

    def __init__(self, creator: SchemaCreator) -> None:
        self.creator = creator

    def component(self, annotation: Any) -> SchemaOrRef:
        return self.creator.for_field_definition(FieldDefinition.from_annotation(annotation))

    def __call__(self, t: mi.Type) -> SchemaOrRef:
        handler: Callable[[Any], SchemaOrRef] | None = getattr(self, f"_{type(t).__name__}", None)
        if handler is not None:
            return handler(t)
        if type(t) in _FORMATS:
            return Schema(type=OpenAPIType.STRING, format=_FORMATS[type(t)])
        raise TypeError(f"the OpenAPI document cannot state the type {t!r}")

    def _Metadata(self, t: mi.Metadata) -> SchemaOrRef:
        inner = self(t.type)
        given = t.extra_json_schema or {}
        extra = {
            attr: value
            for key, attr in _EXTRA_KEYS.items()
            if (value := given.get(key)) is not None
        }
        extra |= {
            attr: _plain_schema(value)
            for key, attr in _EXTRA_SCHEMAS.items()
            if (value := given.get(key)) is not None
        }
        unknown = set(given) - set(_EXTRA_KEYS) - set(_EXTRA_SCHEMAS)
        if unknown:
            raise TypeError(f"json-schema extras the document does not carry: {sorted(unknown)}")
        return _with(inner, **extra) if extra else inner

    def _AnyType(self, t: mi.AnyType) -> SchemaOrRef:
        return Schema()

    def _NoneType(self, t: mi.NoneType) -> SchemaOrRef:
        return Schema(type=OpenAPIType.NULL)

    def _BoolType(self, t: mi.BoolType) -> SchemaOrRef:
        return Schema(type=OpenAPIType.BOOLEAN)

    def _IntType(self, t: mi.IntType) -> SchemaOrRef:
        return self._number(OpenAPIType.INTEGER, t)

    def _FloatType(self, t: mi.FloatType) -> SchemaOrRef:
        return self._number(OpenAPIType.NUMBER, t)

    @staticmethod
    def _number(kind: OpenAPIType, t: mi.IntType | mi.FloatType) -> Schema:
        return Schema(
            type=kind,
            minimum=t.ge,
            exclusive_minimum=t.gt,
            maximum=t.le,
            exclusive_maximum=t.lt,
            multiple_of=t.multiple_of,
        )

    def _StrType(self, t: mi.StrType) -> SchemaOrRef:
        return Schema(
            type=OpenAPIType.STRING,
            min_length=t.min_length,
            max_length=t.max_length,
            # a pattern of emall's own excludes NUL itself (emall.structs)
            pattern=t.pattern or NO_NUL,
        )

    def _LiteralType(self, t: mi.LiteralType) -> SchemaOrRef:
        kinds = {type(value) for value in t.values}
        if kinds == {str}:
            return Schema(type=OpenAPIType.STRING, enum=list(t.values))
        if kinds == {int}:
            return Schema(type=OpenAPIType.INTEGER, enum=list(t.values))
        raise TypeError(f"a Literal of {kinds} is not documented")

    def _EnumType(self, t: mi.EnumType) -> SchemaOrRef:
        if not issubclass(t.cls, str | int) or not issubclass(t.cls, enum.Enum):
            raise TypeError(f"enum {t.cls!r} is neither of str nor of int")
        return self.component(t.cls)

    def _StructType(self, t: mi.StructType) -> SchemaOrRef:
        return self.component(t.cls)

    def _collection(
        self, t: mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType, unique: bool
    ) -> SchemaOrRef:
        return Schema(
            type=OpenAPIType.ARRAY,
            items=self(t.item_type),
            min_items=t.min_length,
            max_items=t.max_length,
            unique_items=True if unique else None,
        )

    def _ListType(self, t: mi.ListType) -> SchemaOrRef:
        return self._collection(t, unique=False)

    def _VarTupleType(self, t: mi.VarTupleType) -> SchemaOrRef:
        return self._collection(t, unique=False)

    def _SetType(self, t: mi.SetType) -> SchemaOrRef:
        return self._collection(t, unique=True)

    def _FrozenSetType(self, t: mi.FrozenSetType) -> SchemaOrRef:
        return self._collection(t, unique=True)

    def _DictType(self, t: mi.DictType) -> SchemaOrRef:
        return Schema(
            type=OpenAPIType.OBJECT,
            property_names=self._key(t.key_type),
            additional_properties=self(t.value_type),
            min_properties=t.min_length,
            max_properties=t.max_length,
        )

    def _key(self, t: mi.Type) -> Schema:
        """An object key is text in JSON: what msgspec reads as the key type."""
        if isinstance(t, mi.StrType):
            return Schema(
                min_length=t.min_length, max_length=t.max_length, pattern=t.pattern or NO_NUL
            )
        if isinstance(t, mi.IntType) and t.lt is None and t.multiple_of is None:
            low = t.ge if t.ge is not None else (t.gt + 1 if t.gt is not None else None)
            if low is not None and t.le is not None:
                return Schema(pattern=integer_pattern(low, t.le))
        raise TypeError(f"the OpenAPI document cannot state object keys of {t!r}")

    def _UnionType(self, t: mi.UnionType) -> SchemaOrRef:
        options = [self(member) for member in t.types]
        return options[0] if len(options) == 1 else Schema(any_of=options)
