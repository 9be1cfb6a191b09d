"""Unified Social Credit Code (统一社会信用代码, USCC) validation per GB 32100-2015.

A USCC has 18 characters drawn from a 31-character alphabet (digits and upper-case
letters without I, O, Z, S, V); each character's value is its index in ``USCC_ALPHABET``.

- position 1: registration authority code (登记管理部门代码), e.g. 1 机构编制, 9 工商, Y 其他;
- position 2: organisation category code (机构类别代码);
- positions 3-8: administrative division code (登记管理机关行政区划码), six digits;
- positions 9-17: organisation code (主体标识码, GB 11714).  Its own ninth character is a
  check over 0-9/X, but many real codes predate that rule, so only the alphabet is checked;
- position 18: check character.  With weights W_i = 3^i mod 31 (i = 0..16) and
  S = sum(value(c_i) * W_i), the check value is (31 - S mod 31) mod 31.

Letters in positions 1-2 are valid (unlike python-stdnum, which rejects them).
"""

from __future__ import annotations

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUES = {ch: i for i, ch in enumerate(USCC_ALPHABET)}
_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
_DIVISION = range(2, 8)  # zero-based indices of positions 3-8


class UsccError(ValueError):
    """An invalid USCC; ``reason`` is a short bilingual message, Chinese first."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def uscc_check_char(first17: str) -> str:
    """Return the check character for the first 17 characters (upper-case alphabet only)."""
    if len(first17) != 17:
        raise UsccError(f"应为17位，实为{len(first17)}位 (need 17 characters, got {len(first17)})")
    total = 0
    for pos, (ch, weight) in enumerate(zip(first17, _WEIGHTS, strict=True), start=1):
        if ch not in _VALUES:
            raise UsccError(
                f"第{pos}位含非法字符 {ch!r} (position {pos}: character {ch!r} not allowed)"
            )
        total += _VALUES[ch] * weight
    return USCC_ALPHABET[(31 - total % 31) % 31]


def validate_uscc(code: str) -> str:
    """Return ``code`` normalised (stripped, upper-case) or raise ``UsccError``."""
    text = code.strip()
    if any(ch.isspace() for ch in text):
        raise UsccError("统一社会信用代码不得包含空白字符 (must not contain whitespace)")
    if len(text) != 18:
        raise UsccError(
            f"统一社会信用代码应为18位，实为{len(text)}位 (must be 18 characters, got {len(text)})"
        )
    chars: list[str] = []
    for index, ch in enumerate(text):
        pos, upper = index + 1, ch.upper()
        if upper not in _VALUES:
            raise UsccError(
                f"第{pos}位含非法字符 {ch!r} (position {pos}: character {ch!r} not allowed)"
            )
        if index in _DIVISION and not upper.isdigit():
            raise UsccError(
                f"第{pos}位应为数字（行政区划码），实为 {ch!r} "
                f"(position {pos}: division code must be a digit, got {ch!r})"
            )
        chars.append(upper)
    normalised = "".join(chars)
    expected = uscc_check_char(normalised[:17])
    if normalised[17] != expected:
        raise UsccError(f"校验位错误，应为 {expected!r} (check character should be {expected!r})")
    return normalised


def is_valid_uscc(code: str) -> bool:
    """Whether ``code`` is a valid USCC (after normalisation)."""
    try:
        validate_uscc(code)
    except UsccError:
        return False
    return True


def region_code_of(code: str) -> str:
    """The six-digit administrative division code (positions 3-8) of a valid USCC."""
    return validate_uscc(code)[2:8]
