"""SMS text cost: the GSM 03.38 tables, encoding choice, segment counts and splitting."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from providers.sms_text import (
    GSM7_BASIC,
    GSM7_BASIC_SEPTETS,
    GSM7_ESCAPE,
    GSM7_EXTENSION,
    GSM7_EXTENSION_CHARS,
    analyze,
    encoding_of,
    split_segments,
)

GSM_CHARS = sorted(GSM7_BASIC_SEPTETS) + sorted(GSM7_EXTENSION)
EMOJI = "\N{GRINNING FACE}"
HINDI_A = "\N{DEVANAGARI LETTER A}"


def gsm7_septets(text: str) -> list[int]:
    """A test-side encoder from the exported tables: the oracle for septet counts."""
    septets: list[int] = []
    for char in text:
        if char in GSM7_EXTENSION:
            septets += [GSM7_ESCAPE, GSM7_EXTENSION[char]]
        else:
            septets.append(GSM7_BASIC_SEPTETS[char])
    return septets


def utf16_units(text: str) -> list[int]:
    raw = text.encode("utf-16-le", "surrogatepass")
    return [int.from_bytes(raw[i : i + 2], "little") for i in range(0, len(raw), 2)]


def is_high(unit: int) -> bool:
    return 0xD800 <= unit <= 0xDBFF


def is_low(unit: int) -> bool:
    return 0xDC00 <= unit <= 0xDFFF


def units_of(text: str, encoding: str) -> list[int]:
    return gsm7_septets(text) if encoding == "gsm7" else utf16_units(text)


# Texts that stay GSM-7, texts that mix in anything (BMP, emoji, lone and paired surrogates
# as code points), and texts dense in the two-unit characters that must not be split.
gsm7_texts = st.text(alphabet=st.sampled_from(GSM_CHARS), max_size=700)
any_texts = st.lists(
    st.one_of(
        st.sampled_from(GSM_CHARS),
        st.characters(exclude_categories=()),
        st.sampled_from([EMOJI, "\ud83d\ude00", "\ud83d", "\ude00"]),
    ),
    max_size=400,
).map("".join)
pair_heavy_texts = st.lists(
    st.sampled_from(["a", "€", "{", HINDI_A, EMOJI, "\ud83d\ude00"]), max_size=400
).map("".join)
texts = st.one_of(gsm7_texts, any_texts, pair_heavy_texts)


def test_basic_table_matches_3gpp_23_038_positions() -> None:
    assert len(GSM7_BASIC) == 128
    expected = {
        0x00: "@",
        0x01: "£",
        0x09: "Ç",
        0x0A: "\n",
        0x0D: "\r",
        0x10: "Δ",
        0x1F: "É",
        0x20: " ",
        0x24: "¤",
        0x30: "0",
        0x40: "¡",
        0x41: "A",
        0x5B: "Ä",
        0x5F: "§",
        0x60: "¿",
        0x61: "a",
        0x7B: "ä",
        0x7F: "à",
    }
    assert {septet: GSM7_BASIC[septet] for septet in expected} == expected
    assert len(set(GSM7_BASIC)) == 128


def test_escape_is_not_a_character_of_the_alphabet() -> None:
    assert "\x1b" not in GSM7_BASIC_SEPTETS
    assert len(GSM7_BASIC_SEPTETS) == 127
    assert analyze("\x1b").encoding == "ucs2"


def test_extension_table_is_the_ten_escaped_characters() -> None:
    assert GSM7_EXTENSION == {
        "\f": 0x0A,
        "^": 0x14,
        "{": 0x28,
        "}": 0x29,
        "\\": 0x2F,
        "[": 0x3C,
        "~": 0x3D,
        "]": 0x3E,
        "|": 0x40,
        "€": 0x65,
    }
    assert not set(GSM7_EXTENSION) & set(GSM7_BASIC_SEPTETS)
    assert {GSM7_EXTENSION_CHARS[s]: s for s in GSM7_EXTENSION_CHARS} == GSM7_EXTENSION


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Hello, world! @£$¥ 0-9", "gsm7"),
        ("Ç", "gsm7"),  # 0x09 is capital C cedilla in 23.038
        ("ç", "ucs2"),  # small c cedilla is not in the alphabet
        ("`", "ucs2"),  # nor is the backtick
        ("€{}[]~|^\\\f", "gsm7"),
        ("नमस्ते", "ucs2"),
        (EMOJI, "ucs2"),
        ("", "gsm7"),
    ],
)
def test_encoding_is_gsm7_only_when_every_character_is_in_the_tables(
    text: str, encoding: str
) -> None:
    assert encoding_of(text) == encoding
    assert analyze(text).encoding == encoding


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments", "per_segment"),
    [
        ("", "gsm7", 0, 1, 160),
        ("a" * 160, "gsm7", 160, 1, 160),
        ("a" * 161, "gsm7", 161, 2, 153),
        ("a" * 153 * 2, "gsm7", 306, 2, 153),
        ("a" * (153 * 2 + 1), "gsm7", 307, 3, 153),
        ("€", "gsm7", 2, 1, 160),
        ("€" * 80, "gsm7", 160, 1, 160),
        ("€" * 81, "gsm7", 162, 2, 153),
        ("a" * 159 + "€", "gsm7", 161, 2, 153),
        (EMOJI, "ucs2", 2, 1, 70),
        ("hi " + EMOJI, "ucs2", 5, 1, 70),
        (HINDI_A * 70, "ucs2", 70, 1, 70),
        (HINDI_A * 71, "ucs2", 71, 2, 67),
        (EMOJI * 35, "ucs2", 70, 1, 70),
        (EMOJI * 36, "ucs2", 72, 2, 67),
        (HINDI_A * 67 * 2, "ucs2", 134, 2, 67),
        (HINDI_A * (67 * 2 + 1), "ucs2", 135, 3, 67),
    ],
)
def test_analyze_boundaries(
    text: str, encoding: str, units: int, segments: int, per_segment: int
) -> None:
    result = analyze(text)
    assert (result.encoding, result.units, result.segments, result.per_segment) == (
        encoding,
        units,
        segments,
        per_segment,
    )


def test_an_escape_pair_that_would_straddle_a_boundary_moves_to_the_next_segment() -> None:
    # 152 septets + a 2-septet euro = 154 > 153: the whole pair opens segment two, so a text
    # of 306 septets needs 3 segments, not the 2 that division would give.
    text = "a" * 152 + "€" + "a" * 152
    assert analyze(text).units == 306
    assert split_segments(text) == ["a" * 152, "€" + "a" * 151, "a"]
    assert analyze(text).segments == 3


def test_a_surrogate_pair_that_would_straddle_a_boundary_moves_to_the_next_segment() -> None:
    text = HINDI_A * 66 + EMOJI + HINDI_A * 65
    parts = split_segments(text)
    assert parts == [HINDI_A * 66, EMOJI + HINDI_A * 65]
    assert analyze(text).units == 133
    assert analyze(text).segments == 2


def test_a_surrogate_pair_spelled_as_two_code_points_stays_whole() -> None:
    pair = "\ud83d\ude00"  # what "surrogatepass" decoding leaves in a str
    text = HINDI_A * 66 + pair + HINDI_A * 5
    assert split_segments(text) == [HINDI_A * 66, pair + HINDI_A * 5]


def test_empty_text_is_one_empty_segment() -> None:
    assert split_segments("") == [""]


@given(texts)
def test_analyze_and_split_agree_and_join_back(text: str) -> None:
    parts = split_segments(text)
    assert "".join(parts) == text
    assert analyze(text).segments == len(parts)


@given(texts)
def test_units_are_septets_or_utf16_code_units(text: str) -> None:
    result = analyze(text)
    assert result.units == len(units_of(text, result.encoding))


@given(texts)
def test_no_segment_exceeds_its_capacity(text: str) -> None:
    result = analyze(text)
    for part in split_segments(text):
        assert len(units_of(part, result.encoding)) <= result.per_segment
    single, concatenated = (160, 153) if result.encoding == "gsm7" else (70, 67)
    assert (result.segments == 1) == (result.units <= single)
    assert result.per_segment == (single if result.segments == 1 else concatenated)


@given(texts)
def test_segments_are_packed_full(text: str) -> None:
    """Every segment but the last is full: the next segment's first piece would not fit."""
    result = analyze(text)
    parts = split_segments(text)
    for part, following in itertools.pairwise(parts):
        spelled_pair = (
            len(following) >= 2 and is_high(ord(following[0])) and is_low(ord(following[1]))
        )
        first_piece = following[:2] if spelled_pair else following[:1]
        assert part
        assert (
            len(units_of(part, result.encoding)) + len(units_of(first_piece, result.encoding))
            > result.per_segment
        )


@given(texts)
def test_no_boundary_splits_an_escape_or_a_surrogate_pair(text: str) -> None:
    encoding = analyze(text).encoding
    whole = units_of(text, encoding)
    offset = 0
    for part in split_segments(text)[:-1]:
        offset += len(units_of(part, encoding))
        before, after = whole[offset - 1], whole[offset]
        if encoding == "gsm7":
            # Literal ESC cannot be in a GSM-7 text, so every ESC septet opens a pair.
            assert before != GSM7_ESCAPE
        else:
            assert not (is_high(before) and is_low(after))
