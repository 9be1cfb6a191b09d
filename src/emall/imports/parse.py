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
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from typing import Any

import msgspec

from emall.errors import ValidationFailed
from emall.imports.models import FORMATS, MAX_FILE_BYTES, MAX_ROWS
from emall.listings.models import OfferRow
from emall.structs import FrozenStruct

BOM = "\ufeff"
COLUMNS: tuple[str, ...] = tuple(f.name for f in msgspec.structs.fields(OfferRow))
REQUIRED_COLUMNS: tuple[str, ...] = tuple(
    f.name for f in msgspec.structs.fields(OfferRow) if f.required
)
LIST_COLUMNS = ("policy_tags", "image_urls")
_json = msgspec.json.Decoder()


class ParseError(FrozenStruct, frozen=True):
    """A row that could not be read; ``field`` is ``row`` when the whole row is unreadable."""

    field: str
    reason: str


def _file_error(reason: str) -> ValidationFailed:
    return ValidationFailed.single("file", reason)


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
        raise _file_error(
            f"文件不是有效的 UTF-8 编码，请另存为 UTF-8 (the file is not valid UTF-8: "
            f"byte offset {exc.start})"
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
        header = next(reader, None)
        if header is None:
            raise _file_error("文件为空 (the file is empty: a CSV file needs a header row)")
        _check_header(header)
        try:
            total = sum(1 for record in reader if any(map(str.strip, record)))
        except csv.Error as exc:
            raise _file_error(f"CSV 格式有误 (malformed CSV: {exc})") from None
    if total == 0:
        raise _file_error("文件中没有数据行 (the file has no data rows)")
    if total > MAX_ROWS:
        raise _file_error(
            f"文件超过 {MAX_ROWS:,} 行上限，请拆分后导入 "
            f"(the file has {total:,} rows; the limit is {MAX_ROWS:,} rows per file)"
        )
    return total


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
        try:
            value = _json.decode(line)
        except msgspec.DecodeError as exc:
            yield number, ParseError("row", f"不是有效的 JSON (invalid JSON: {exc})")
            continue
        if not isinstance(value, dict):
            yield (
                number,
                ParseError("row", "每行须为一个 JSON 对象 (each line must be one JSON object)"),
            )
            continue
        yield number, value


def _csv_rows(text: str) -> Iterator[tuple[int, dict[str, Any] | ParseError]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = _check_header(next(reader, []))
    width = len(header)
    columns = [(name, _READERS.get(name)) for name in header]
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
        yield number, _csv_row(columns, record)


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


def _specs(cell: str) -> dict[str, Any] | ParseError:
    try:
        specs = _json.decode(cell)
    except msgspec.DecodeError as exc:
        return ParseError("specs", f"须为 JSON 对象 (specs must be a JSON object: {exc})")
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
