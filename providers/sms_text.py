"""What an SMS text costs: GSM 03.38 alphabet, GSM-7 or UCS-2, and how it splits into segments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Written by hand: the `gsm0338` package on PyPI is a codec only (it neither counts nor splits),
# and python-gsmmodem counts each code point as one UTF-16 unit, so emoji break it (docs/gsm.md,
# "Segment sizes"). The tables are 3GPP TS 23.038 §6.2.1 (default alphabet) and §6.2.1.1
# (extension table); both are exported for the modem's PDU codec.

Encoding = Literal["gsm7", "ucs2"]

# The septet that announces an extension-table character (ESC).
GSM7_ESCAPE = 0x1B

# The default alphabet, indexed by septet value. 0x09 is capital Ç (23.038; small ç is not in the
# alphabet). Index 0x1B holds "\x1b" only as a placeholder: that septet is ESC, not a character,
# so it is left out of GSM7_BASIC_SEPTETS and a literal "\x1b" in a text forces UCS-2.
GSM7_BASIC: str = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

# Character -> septet for the default alphabet, for encoders (ESC excluded, see above).
GSM7_BASIC_SEPTETS: dict[str, int] = {
    char: septet for septet, char in enumerate(GSM7_BASIC) if septet != GSM7_ESCAPE
}

# Character -> the septet that follows ESC. Each of these costs two septets.
GSM7_EXTENSION: dict[str, int] = {
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

# Septet after ESC -> character, for decoders.
GSM7_EXTENSION_CHARS: dict[int, str] = {septet: char for char, septet in GSM7_EXTENSION.items()}

# 140 octets of user data; a concatenated segment gives 6 octets to the 8-bit-reference UDH
# (7 septets in GSM-7, 3 UTF-16 units in UCS-2). The modem's PDU codec can also use the
# 16-bit-reference UDH, 7 octets (8 septets, and 4 units since UCS-2 cannot use half a unit).
GSM7_SINGLE_SEPTETS = 160
GSM7_SEGMENT_SEPTETS = 153
GSM7_SEGMENT_SEPTETS_16BIT_REF = 152
UCS2_SINGLE_UNITS = 70
UCS2_SEGMENT_UNITS = 67
UCS2_SEGMENT_UNITS_16BIT_REF = 66

# Bits in the concatenation reference: 8 (UDH IEI 0x00) or 16 (IEI 0x08), TS 23.040 §9.2.3.24.
RefBits = Literal[8, 16]


@dataclass(frozen=True, slots=True)
class SmsText:
    """The cost of one text: its encoding, its length in that encoding's units, its segments.

    `units` are septets for GSM-7 (an extension character counts two) and UTF-16 code units for
    UCS-2 (a character outside the BMP, such as an emoji, counts two). `per_segment` is the
    capacity of each segment: the single-message size when `segments` is 1, else the
    concatenated size.
    """

    encoding: Encoding
    units: int
    segments: int
    per_segment: int


def encoding_of(text: str) -> Encoding:
    """GSM-7 when every character is in the default alphabet or its extension, else UCS-2."""
    for char in text:
        if char not in GSM7_BASIC_SEPTETS and char not in GSM7_EXTENSION:
            return "ucs2"
    return "gsm7"


def _atoms(text: str, encoding: Encoding) -> list[tuple[int, int]]:
    """(length in code points, cost in units) of each piece that must stay in one segment.

    GSM-7: one character, one atom; an extension character is its escape pair, costing 2.
    UCS-2: an astral character (emoji) is one code point but two UTF-16 units; a surrogate pair
    spelled as two code points (a str decoded with "surrogatepass") is one atom of 2 units; a
    lone surrogate is one unit.
    """
    if encoding == "gsm7":
        return [(1, 2 if char in GSM7_EXTENSION else 1) for char in text]
    atoms: list[tuple[int, int]] = []
    index = 0
    while index < len(text):
        code = ord(text[index])
        if (
            0xD800 <= code <= 0xDBFF
            and index + 1 < len(text)
            and 0xDC00 <= ord(text[index + 1]) <= 0xDFFF
        ):
            atoms.append((2, 2))
            index += 2
            continue
        atoms.append((1, 2 if code > 0xFFFF else 1))
        index += 1
    return atoms


def _pack(text: str, ref_bits: RefBits) -> tuple[Encoding, int, int, list[tuple[int, int]]]:
    """Encoding, total units, per-segment capacity and the (start, end) of each segment.

    Packing walks whole atoms, so an escape pair or a surrogate pair always lands in a single
    segment; an atom that does not fit starts the next segment, which is why the count can
    exceed ceil(units / capacity).
    """
    if ref_bits not in (8, 16):
        raise ValueError(f"ref_bits must be 8 or 16, not {ref_bits!r}")
    encoding = encoding_of(text)
    if encoding == "gsm7":
        single = GSM7_SINGLE_SEPTETS
        concatenated = GSM7_SEGMENT_SEPTETS if ref_bits == 8 else GSM7_SEGMENT_SEPTETS_16BIT_REF
    else:
        single = UCS2_SINGLE_UNITS
        concatenated = UCS2_SEGMENT_UNITS if ref_bits == 8 else UCS2_SEGMENT_UNITS_16BIT_REF
    atoms = _atoms(text, encoding)
    units = sum(cost for _, cost in atoms)
    if units <= single:
        return encoding, units, single, [(0, len(text))]
    bounds: list[tuple[int, int]] = []
    start = end = used = 0
    for length, cost in atoms:
        if used + cost > concatenated:
            bounds.append((start, end))
            start, used = end, 0
        used += cost
        end += length
    bounds.append((start, end))
    return encoding, units, concatenated, bounds


def analyze(text: str, *, ref_bits: RefBits = 8) -> SmsText:
    """What `text` costs as an SMS. The empty text is one segment of 0 units.

    `ref_bits` is the concatenation reference the sender will use: 16 leaves one unit less per
    segment of a long message.
    """
    encoding, units, per_segment, bounds = _pack(text, ref_bits)
    return SmsText(encoding=encoding, units=units, segments=len(bounds), per_segment=per_segment)


def split_segments(text: str, *, ref_bits: RefBits = 8) -> list[str]:
    """The text of each segment, in order; joined they give `text` back (`[""]` for "").

    `ref_bits` as for `analyze`.
    """
    _, _, _, bounds = _pack(text, ref_bits)
    return [text[start:end] for start, end in bounds]
