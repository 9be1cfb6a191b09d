"""Reading an import file into rows: JSON Lines or CSV, UTF-8.

``parse_rows(fmt, content)`` yields ``(row_number, dict | ParseError)`` for every data row:

* **jsonl**: one JSON object per line; blank lines are skipped; the row number is the line
  number.
* **csv**: UTF-8 (a byte order mark is allowed) with a header row naming ``OfferRow`` fields.
  Row numbers count data rows from 1 (the header is not counted). ``specs`` is a JSON object,
  ``delivery`` is ``511000:2;510300:4`` (region:days pairs), ``policy_tags`` and
  ``image_urls`` are ``;``-separated, and an empty cell means "use the default".

The values are what the file says (CSV cells stay strings); ``emall.imports.validate`` turns a
row into an ``OfferRow``. What is wrong with the file as a whole (not UTF-8, too large, an
unknown CSV column) is a ``ValidationFailed`` naming ``file``.

Two things no row may hold are refused here, as a ``ParseError`` naming the field, because
they would otherwise end the whole job rather than the row:

* JSON nested deeper than ``MAX_JSON_DEPTH`` (a JSONL row's field, a CSV ``specs`` cell). The
  depth is measured without recursion before the (recursive) decoder sees the text, so that a
  line nested thousands deep cannot raise ``RecursionError``.
* a NUL character in any text of the row (a value, a list item, a key), which PostgreSQL text
  and jsonb cannot store. The other characters they cannot store, lone surrogates, cannot
  occur: the file is strict UTF-8 and the JSON decoder refuses a lone ``\\ud800``. A row is
  searched only when its text may hold a NUL (the ``\\u0000`` escape in a JSONL line, the
  character anywhere in a CSV file), so that clean files pay nothing.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from typing import Any

import msgspec

from emall.errors import FieldError, MalformedInput, ValidationFailed
from emall.imports.models import FORMATS, MAX_FILE_BYTES, MAX_JSON_DEPTH, MAX_ROWS
from emall.listings.models import OfferRow
from emall.structs import FrozenStruct

BOM = "\ufeff"
COLUMNS: tuple[str, ...] = tuple(f.name for f in msgspec.structs.fields(OfferRow))
REQUIRED_COLUMNS: tuple[str, ...] = tuple(
    f.name for f in msgspec.structs.fields(OfferRow) if f.required
)
LIST_COLUMNS = ("policy_tags", "image_urls")
_json = msgspec.json.Decoder()
NUL = "\x00"
NUL_REASON = "不能包含 NUL 字符 (must not contain a NUL character)"
_TOO_DEEP = f"JSON 嵌套过深 (JSON nested deeper than {MAX_JSON_DEPTH} levels)"
# One token of JSON text that matters for its depth: a string (with the colon after it when it
# is a key), or a bracket. Everything else (numbers, commas, white space) is skipped.
_DEPTH_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"(?:\s*:)?|[\[\]{}]')


class ParseError(FrozenStruct, frozen=True):
    """A row that could not be read; ``field`` is ``row`` when the whole row is unreadable."""

    field: str
    reason: str


def _file_error(reason: str) -> ValidationFailed:
    return ValidationFailed.single("file", reason)


def _unreadable(field: str, reason: str) -> MalformedInput:
    return MalformedInput([FieldError(field=field, reason=reason)])


def decode_text(content: bytes) -> str:
    """The file as text: strict UTF-8 without its byte order mark."""
    if len(content) > MAX_FILE_BYTES:
        raise _file_error(
            f"文件超过 {MAX_FILE_BYTES // (1024 * 1024)} MB 上限 "
            f"(the file is {len(content)} bytes; the limit is 50 MB)"
        )
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _unreadable(
            "file",
            f"文件不是有效的 UTF-8 编码，请另存为 UTF-8 (the file is not valid UTF-8: "
            f"byte offset {exc.start})",
        ) from None
    return text.removeprefix(BOM)


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValidationFailed.single(
            "format", f"不支持的文件格式 (unsupported format {fmt!r}; use csv or jsonl)"
        )


def count_rows(fmt: str, content: bytes) -> int:
    """The number of data rows, after checking the file as a whole (encoding, size, header and
    the row limit). Raises ``ValidationFailed`` naming ``file``."""
    check_format(fmt)
    text = decode_text(content)
    if fmt == "jsonl":
        total = sum(1 for line in text.split("\n") if line.strip())
    else:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = _read_header(reader)
        if header is None:
            raise _file_error("文件为空 (the file is empty: a CSV file needs a header row)")
        _check_header(header)
        try:
            total = sum(1 for record in reader if any(map(str.strip, record)))
        except csv.Error as exc:
            raise _unreadable("file", f"CSV 格式有误 (malformed CSV: {exc})") from None
    if total == 0:
        raise _file_error("文件中没有数据行 (the file has no data rows)")
    if total > MAX_ROWS:
        raise _file_error(
            f"文件超过 {MAX_ROWS:,} 行上限，请拆分后导入 "
            f"(the file has {total:,} rows; the limit is {MAX_ROWS:,} rows per file)"
        )
    return total


def _read_header(reader: Iterator[list[str]]) -> list[str] | None:
    """The header row, or None for an empty file; an unreadable header (a cell longer than the
    CSV reader's field limit, 131,072 characters) is a ``MalformedInput`` (400) naming
    ``file.header``."""
    try:
        return next(reader, None)
    except csv.Error as exc:
        raise _unreadable(
            "file.header",
            f"CSV 表头无法读取，列名过长或格式有误 (the header row cannot be read: {exc})",
        ) from None


def _check_header(header: list[str]) -> list[str]:
    names = [name.strip().removeprefix(BOM).strip() for name in header]
    unknown = [n for n in names if n not in COLUMNS]
    if unknown:
        raise _file_error(
            f"表头中有未知的列 (unknown columns: {', '.join(repr(n) for n in unknown)}; "
            f"known: {', '.join(COLUMNS)})"
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise _file_error(f"表头中有重复的列 (repeated columns: {', '.join(repeated)})")
    missing = [n for n in REQUIRED_COLUMNS if n not in names]
    if missing:
        raise _file_error(f"表头缺少必填的列 (missing columns: {', '.join(missing)})")
    return names


def parse_rows(fmt: str, content: bytes) -> Iterator[tuple[int, dict[str, Any] | ParseError]]:
    """Every data row with its number; a row that cannot be read is a ``ParseError``."""
    check_format(fmt)
    text = decode_text(content)
    if fmt == "jsonl":
        yield from _jsonl_rows(text)
    else:
        yield from _csv_rows(text)


def _jsonl_rows(text: str) -> Iterator[tuple[int, dict[str, Any] | ParseError]]:
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        # the row's own object is one level: its fields may nest MAX_JSON_DEPTH below it
        deep = _too_deep(line, MAX_JSON_DEPTH + 1)
        if deep is not None:
            yield number, ParseError(deep, _TOO_DEEP)
            continue
        try:
            value = _json.decode(line)
        except msgspec.DecodeError as exc:
            yield number, ParseError("row", f"不是有效的 JSON (invalid JSON: {exc})")
            continue
        except RecursionError:  # not reached after _too_deep; kept so that it cannot end a job
            yield number, ParseError("row", _TOO_DEEP)
            continue
        if not isinstance(value, dict):
            yield (
                number,
                ParseError("row", "每行须为一个 JSON 对象 (each line must be one JSON object)"),
            )
            continue
        if "\\u0000" in line:  # the only way JSON text spells a NUL
            yield number, _without_nul(value)
            continue
        yield number, value


def _csv_rows(text: str) -> Iterator[tuple[int, dict[str, Any] | ParseError]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = _check_header(_read_header(reader) or [])
    width = len(header)
    columns = [(name, _READERS.get(name)) for name in header]
    may_hold_nul = NUL in text
    for number, record in enumerate(reader, start=1):
        if not any(map(str.strip, record)):
            continue
        if len(record) > width:
            yield (
                number,
                ParseError(
                    "row",
                    f"该行比表头多 {len(record) - width} 列 "
                    f"(the row has {len(record)} cells; the header has {width})",
                ),
            )
            continue
        row = _csv_row(columns, record)
        yield number, _without_nul(row) if may_hold_nul and isinstance(row, dict) else row


def _csv_row(
    columns: list[tuple[str, _CellReader | None]], record: list[str]
) -> dict[str, Any] | ParseError:
    row: dict[str, Any] = {}
    for (name, read), raw in zip(columns, record, strict=False):
        cell = raw.strip()
        if not cell:
            continue  # an empty cell: the default
        if read is None:
            row[name] = cell
            continue
        value = read(cell)
        if isinstance(value, ParseError):
            return value
        row[name] = value
    return row


def _without_nul(row: dict[str, Any]) -> dict[str, Any] | ParseError:
    """The row, or a ``ParseError`` naming a text in it that holds a NUL: ``title``,
    ``image_urls[0]``, ``specs.cpu``; a key with a NUL is named with it written ``\\u0000``."""
    stack: list[tuple[object, str]] = [(row, "")]
    while stack:  # depth first, in file order; nesting is bounded by _too_deep
        value, path = stack.pop()
        if isinstance(value, str):
            if NUL in value:
                return ParseError(path, NUL_REASON)
        elif isinstance(value, dict):
            children: list[tuple[object, str]] = []
            for key, child in value.items():
                name = key.replace(NUL, "\\u0000")
                child_path = f"{path}.{name}" if path else name
                if NUL in key:
                    return ParseError(child_path, NUL_REASON)
                children.append((child, child_path))
            stack.extend(reversed(children))
        elif isinstance(value, list):
            stack.extend((value[i], f"{path}[{i}]") for i in reversed(range(len(value))))
    return row


def _too_deep(text: str, limit: int) -> str | None:
    """``None`` when the JSON text nests at most ``limit`` arrays and objects deep; otherwise the
    field that nests deeper: the key of the outermost object under which the limit is passed,
    or ``row`` when the text is not an object. Iterative, and quick for a text with no more
    brackets than the limit (it cannot nest deeper than that)."""
    if text.count("[") + text.count("{") <= limit:
        return None
    depth = 0
    key: str | None = None
    for match in _DEPTH_TOKEN.finditer(text):
        token = match.group()
        if token[0] == '"':
            if depth == 1 and token[-1] == ":":
                key = token
        elif token in "[{":
            depth += 1
            if depth > limit:
                return "row" if key is None else _key_name(key)
        else:
            depth -= 1
    return None


def _key_name(token: str) -> str:
    """The name a key token (``"specs" :``) stands for; ``row`` if it does not decode."""
    try:
        name = _json.decode(token[: token.rindex('"') + 1])
    except msgspec.DecodeError:
        return "row"
    return name if isinstance(name, str) else "row"


def _specs(cell: str) -> dict[str, Any] | ParseError:
    if _too_deep(cell, MAX_JSON_DEPTH) is not None:
        return ParseError("specs", _TOO_DEEP)
    try:
        specs = _json.decode(cell)
    except msgspec.DecodeError as exc:
        return ParseError("specs", f"须为 JSON 对象 (specs must be a JSON object: {exc})")
    except RecursionError:  # not reached after _too_deep; kept so that it cannot end a job
        return ParseError("specs", _TOO_DEEP)
    if not isinstance(specs, dict):
        return ParseError(
            "specs", '须为 JSON 对象，如 {"memory_gb": 16} (specs must be a JSON object)'
        )
    return specs


def _list(cell: str) -> list[str]:
    return [item.strip() for item in cell.split(";") if item.strip()]


def _delivery(cell: str) -> list[dict[str, str]] | ParseError:
    pairs: list[dict[str, str]] = []
    for index, item in enumerate(part for part in cell.split(";") if part.strip()):
        region, sep, days = item.partition(":")
        if not sep or not region.strip() or not days.strip():
            return ParseError(
                f"delivery[{index}]",
                f"配送地区格式应为 地区代码:天数，多个用分号隔开 "
                f"(expected region:days pairs such as 511000:2;510300:4, got {item.strip()!r})",
            )
        pairs.append({"region_code": region.strip(), "delivery_days": days.strip()})
    return pairs


_CellReader = Callable[[str], Any]
# How a non-empty cell becomes a value, for the columns that are not plain text.
_READERS: dict[str, _CellReader] = {
    "specs": _specs,
    "delivery": _delivery,
    **dict.fromkeys(LIST_COLUMNS, _list),
}
