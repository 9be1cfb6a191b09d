"""USCC (GB 32100-2015) validation, checked against an independent inline reference."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emall.organisations.uscc import (
    USCC_ALPHABET,
    UsccError,
    is_valid_uscc,
    region_code_of,
    uscc_check_char,
    validate_uscc,
)

# Independent reference: alphabet and weights written out literally, not imported.
REF_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
REF_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def ref_check(first17: str) -> str:
    total = sum(REF_ALPHABET.index(c) * w for c, w in zip(first17, REF_WEIGHTS, strict=True))
    return REF_ALPHABET[-total % 31]


# Published codes (Tencent, Huawei, Alibaba, a Beijing company, two central-government bodies).
REAL_CODES = [
    "91350100M000100Y43",
    "91110000600037341L",
    "911100007109336571",
    "9144030071526726XG",
    "914403001922038216",
    "91330100799655058B",
    "91110108551385082Q",
    "12100000400000624D",
    "11100000000013127D",
]

# Letters in positions 1-2 (Y 其他 / N 农业 authorities, A/G/... categories), check char by reference.
LETTER_PREFIX_CODES = [
    p + ref_check(p)
    for p in ("Y1110000MA01ABCDE", "N2510100MA61R1W17", "93440300MA5F00001", "A1320000XY1234567")
]

VALID_CODES = REAL_CODES + LETTER_PREFIX_CODES

DIVISION_INDICES = range(2, 8)

digit = st.sampled_from("0123456789")
symbol = st.sampled_from(REF_ALPHABET)


@st.composite
def valid_codes(draw: st.DrawFn) -> str:
    first17 = "".join(draw(digit if i in DIVISION_INDICES else symbol) for i in range(17))
    return first17 + ref_check(first17)


def test_alphabet_matches_the_standard() -> None:
    assert USCC_ALPHABET == REF_ALPHABET
    assert len(USCC_ALPHABET) == 31
    assert not set("IOZSV") & set(USCC_ALPHABET)


@pytest.mark.parametrize("code", VALID_CODES)
def test_known_valid_codes_pass(code: str) -> None:
    assert validate_uscc(code) == code
    assert is_valid_uscc(code)
    assert uscc_check_char(code[:17]) == code[17]


def test_letter_prefix_literal() -> None:
    # Pinned literal (checked by hand: weighted sum 2038, 2038 % 31 = 23, 31 - 23 = 8).
    assert LETTER_PREFIX_CODES[0] == "Y1110000MA01ABCDE8"
    assert is_valid_uscc("Y1110000MA01ABCDE8")


def test_normalisation_strips_and_upper_cases() -> None:
    assert validate_uscc("  9144030071526726xg\n") == "9144030071526726XG"
    assert validate_uscc("91350100m000100y43") == "91350100M000100Y43"


def test_region_code_of() -> None:
    assert region_code_of("9144030071526726XG") == "440300"
    chengdu = "91510100MA61R1W17" + ref_check("91510100MA61R1W17")
    assert region_code_of(f" {chengdu.lower()} ") == "510100"
    with pytest.raises(UsccError):
        region_code_of("9144030071526726XH")


@given(valid_codes())
def test_generated_valid_codes_pass(code: str) -> None:
    assert validate_uscc(code) == code
    assert validate_uscc(code.lower()) == code
    assert region_code_of(code) == code[2:8]


@given(valid_codes(), st.integers(0, 17), symbol)
def test_any_single_character_change_fails(code: str, index: int, replacement: str) -> None:
    if replacement == code[index]:
        replacement = REF_ALPHABET[(REF_ALPHABET.index(replacement) + 1) % 31]
    changed = code[:index] + replacement + code[index + 1 :]
    assert not is_valid_uscc(changed)
    with pytest.raises(UsccError):
        validate_uscc(changed)


@given(valid_codes(), st.sampled_from(DIVISION_INDICES), st.sampled_from(REF_ALPHABET[10:]))
def test_letter_in_division_code_fails(code: str, index: int, letter: str) -> None:
    changed = code[:index] + letter + code[index + 1 :]
    with pytest.raises(UsccError) as info:
        validate_uscc(changed)
    assert f"第{index + 1}位" in info.value.reason
    assert f"position {index + 1}" in info.value.reason


def test_every_position_rejects_every_other_symbol_for_one_code() -> None:
    code = "91110000600037341L"
    for index in range(18):
        for replacement in REF_ALPHABET:
            if replacement != code[index]:
                assert not is_valid_uscc(code[:index] + replacement + code[index + 1 :])


@pytest.mark.parametrize("code", ["", "9", "91110000600037341", "91110000600037341L0", "9" * 40])
def test_wrong_length(code: str) -> None:
    with pytest.raises(UsccError) as info:
        validate_uscc(code)
    assert "18位" in info.value.reason
    assert "must be 18 characters" in info.value.reason


@pytest.mark.parametrize("bad", ["I", "O", "Z", "S", "V", "i", "o", "z", "s", "v", "-", "中", "１"])
@pytest.mark.parametrize("index", [0, 4, 12, 17])
def test_illegal_character_reports_position(bad: str, index: int) -> None:
    code = "91110000600037341L"
    changed = code[:index] + bad + code[index + 1 :]
    with pytest.raises(UsccError) as info:
        validate_uscc(changed)
    reason = info.value.reason
    assert f"第{index + 1}位" in reason
    assert f"position {index + 1}" in reason
    assert bad in reason


def test_chinese_characters_refused() -> None:
    with pytest.raises(UsccError) as info:
        validate_uscc("统一社会信用代码统一社会信用代码统一")
    assert "第1位" in info.value.reason


def test_internal_whitespace_refused() -> None:
    with pytest.raises(UsccError) as info:
        validate_uscc("911100006000 37341L")
    assert "空白" in info.value.reason
    assert not is_valid_uscc("91110000 600037341L")


def test_wrong_check_character_names_the_right_one() -> None:
    with pytest.raises(UsccError) as info:
        validate_uscc("91110000600037341M")
    assert info.value.reason == "校验位错误，应为 'L' (check character should be 'L')"
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "first17", ["", "9111000060003734", "911100006000373411", "9111000060003734I"]
)
def test_check_char_rejects_bad_input(first17: str) -> None:
    with pytest.raises(ValueError, match=r"17|position"):
        uscc_check_char(first17)
