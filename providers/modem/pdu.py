"""SMS PDUs (3GPP TS 23.040, 23.038): SMS-SUBMIT and -DELIVER both ways, SMS-STATUS-REPORT."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from providers.sms_text import (
    GSM7_BASIC,
    GSM7_BASIC_SEPTETS,
    GSM7_ESCAPE,
    GSM7_EXTENSION,
    GSM7_EXTENSION_CHARS,
    RefBits,
    encoding_of,
    split_segments,
)

# Written from the specs rather than taken from PyPI: smspdudecoder only decodes (no SUBMIT
# encoder, no status reports) and pulls in bitstring and pytz; python-gsmmodem's pdu.py treats
# every code point as one UCS-2 unit (emoji break it), only knows 8-bit references and is LGPL;
# smspdu is Python 2 code that no longer installs. Section numbers below are TS 23.040 unless
# they say 23.038.

# TP-MTI, the two low bits of the first octet (§9.2.3.1), as seen by a phone: the same value 2
# means SMS-STATUS-REPORT coming in and SMS-COMMAND going out; we only ever decode it coming in.
MTI_DELIVER = 0
MTI_SUBMIT = 1
MTI_STATUS_REPORT = 2

# First-octet flags (§9.2.2.1, §9.2.2.2, §9.2.2.3).
FLAG_NO_MORE_MESSAGES = 0x04  # TP-MMS in a DELIVER or STATUS-REPORT, set as SCs send it
FLAG_VPF_RELATIVE = 0x10  # TP-VPF = 10 in a SUBMIT
FLAG_STATUS_REPORT = 0x20  # TP-SRR in a SUBMIT, TP-SRI in a DELIVER
FLAG_UDHI = 0x40

# Type-of-address octets (§9.1.2.5): international and unknown/national ISDN numbers, and the
# alphanumeric type (TON 101) that shops and banks send from.
TOA_INTERNATIONAL = 0x91
TOA_NATIONAL = 0x81
TOA_ALPHANUMERIC = 0xD0
TON_MASK = 0x70
TON_INTERNATIONAL = 0x10
TON_ALPHANUMERIC = 0x50

# An address field holds at most 10 octets of value (§9.1.2.5): 20 digits, or 11 septets of an
# alphanumeric name; the SC address in front of the TPDU is the same 10 octets plus its type.
MAX_ADDRESS_DIGITS = 20
MAX_ALPHANUMERIC_SEPTETS = 11
MAX_SCA_OCTETS = 11

# TP-UD holds at most 140 octets (§9.2.3.16), i.e. 160 septets of GSM-7.
MAX_UD_OCTETS = 140
MAX_UD_SEPTETS = 160

# Concatenated short messages, 8-bit and 16-bit reference (§9.2.3.24.1, §9.2.3.24.8).
IEI_CONCAT_8 = 0x00
IEI_CONCAT_16 = 0x08

# Relative validity period steps (§9.2.3.12.1); anything longer is capped at 63 weeks.
_FIVE_MINUTES = 300
_HALF_HOUR = 1800
_HALF_DAY = 43_200
_DAY = 86_400
_WEEK = 604_800
_QUARTER_HOUR = timedelta(minutes=15)
MAX_VALIDITY_SECONDS = 63 * _WEEK

# Semi-octet digits of an address (§9.1.2.3 and §9.1.2.5): 0-9, then * # a b c; F is filler.
_BCD_DIGITS = "0123456789*#abc"
_FILLER = 0xF

_HEX = re.compile(r"[0-9A-Fa-f]*")
_NUMBER = re.compile(r"\+?[0-9]{1,20}")

Encoding = Literal["gsm7", "ucs2", "8bit"]


class PduError(ValueError):
    """A PDU that is malformed or truncated: what is wrong, and at which octet (0 = first)."""

    def __init__(self, reason: str, offset: int | None = None) -> None:
        self.reason = reason
        self.offset = offset
        super().__init__(reason if offset is None else f"{reason} (at octet {offset})")


@dataclass(frozen=True, slots=True)
class Concat:
    """One part of a concatenated message: reference, part count and this part's number."""

    ref: int
    total: int
    seq: int
    ref_bits: RefBits


@dataclass(frozen=True, slots=True)
class SubmitPart:
    """One SMS-SUBMIT ready for AT+CMGS=<tpdu_length>, then `pdu` and Ctrl-Z."""

    pdu: str  # uppercase hex with the SCA prefix "00": the modem uses its +CSCA
    tpdu_length: int  # octets after the SCA: the <n> of AT+CMGS=<n>
    text: str
    concat: Concat | None


@dataclass(frozen=True, slots=True)
class Submit:
    """A decoded SMS-SUBMIT (what we, or the driver under test, asked the modem to send)."""

    smsc: str | None
    message_reference: int
    number: str
    text: str
    encoding: Encoding
    concat: Concat | None
    status_report_requested: bool
    validity_seconds: int | None
    data: bytes | None  # the payload of an 8-bit message; None for text
    # Additions: an absolute TP-VP has no length in seconds, and class 0 means "flash".
    validity_until: datetime | None = None
    message_class: int | None = None


@dataclass(frozen=True, slots=True)
class Deliver:
    """A decoded SMS-DELIVER: one inbound message (or one part of a long one)."""

    smsc: str | None
    number: str  # "+<digits>" international, digits otherwise, or the alphanumeric name
    text: str
    timestamp: datetime  # the service centre time stamp, in the zone it carried
    encoding: Encoding
    concat: Concat | None
    data: bytes | None
    message_class: int | None = None


@dataclass(frozen=True, slots=True)
class StatusReport:
    """A decoded SMS-STATUS-REPORT: what became of the SUBMIT with `message_reference`."""

    smsc: str | None
    message_reference: int
    number: str  # the recipient of the original message
    timestamp: datetime  # when the service centre accepted the SUBMIT
    discharge: datetime  # when it delivered, or gave up, or last tried
    status: int  # TP-ST, §9.2.3.15

    @property
    def delivered(self) -> bool:
        """Received by the phone (0x00), or forwarded / replaced in a way the SC counts as done."""
        return self.status < 0x03

    @property
    def failed(self) -> bool:
        """A permanent error (0x40-0x5F), or a temporary one the SC stopped retrying (0x60-0x7F)."""
        return bool(self.status & 0x40)

    @property
    def pending(self) -> bool:
        """A temporary error the service centre is still retrying (0x20-0x3F): wait."""
        return 0x20 <= self.status <= 0x3F


# --- encoding -------------------------------------------------------------------------------


def encode_submit(
    number: str,
    text: str,
    *,
    concat_ref: int = 0,
    ref_bits: RefBits = 8,
    status_report: bool = True,
    validity_seconds: int | None = None,
    flash: bool = False,
) -> list[SubmitPart]:
    """The SMS-SUBMIT PDUs that send `text` to `number`, one per segment.

    `number` is "+<digits>" (international) or digits (national). GSM-7 when the text allows,
    else UCS-2; segmentation is sms_text's, so an escape or surrogate pair is never split.
    TP-MR is 0 (the modem assigns the real one) and reject-duplicates is off.
    Raises ValueError for a bad number, reference, validity or a text of more than 255 parts.
    """
    destination = _encode_address(number, alphanumeric=False)
    _check_concat_ref(concat_ref, ref_bits)
    validity = b"" if validity_seconds is None else bytes([relative_validity(validity_seconds)])
    encoding = encoding_of(text)
    segments = split_segments(text, ref_bits=ref_bits)
    total = _check_part_count(len(segments))
    first = MTI_SUBMIT
    if validity:
        first |= FLAG_VPF_RELATIVE
    if status_report:
        first |= FLAG_STATUS_REPORT
    if total > 1:
        first |= FLAG_UDHI
    dcs = _dcs(encoding, flash=flash)
    parts: list[SubmitPart] = []
    for seq, segment in enumerate(segments, start=1):
        concat = Concat(concat_ref, total, seq, ref_bits) if total > 1 else None
        udl, user_data = _encode_user_data(segment, encoding, _concat_udh(concat))
        tpdu = bytes([first, 0]) + destination + bytes([0, dcs]) + validity + bytes([udl])
        tpdu += user_data
        parts.append(SubmitPart("00" + tpdu.hex().upper(), len(tpdu), segment, concat))
    return parts


def encode_deliver(
    sender: str,
    text: str,
    timestamp: datetime,
    *,
    smsc: str | None = None,
    concat_ref: int = 0,
    ref_bits: RefBits = 8,
) -> list[str]:
    """SMS-DELIVER PDUs (hex, with the SCA) for `text` from `sender`, as a modem would list them.

    `sender` may be a number or an alphanumeric name (GSM-7, at most 11 septets); `timestamp`
    must be aware, its offset a whole number of quarter hours (fractions of a second are
    dropped).
    """
    sca = _encode_sca(smsc)
    originator = _encode_address(sender, alphanumeric=True)
    stamp = _encode_timestamp(timestamp, "timestamp")
    _check_concat_ref(concat_ref, ref_bits)
    encoding = encoding_of(text)
    segments = split_segments(text, ref_bits=ref_bits)
    total = _check_part_count(len(segments))
    first = MTI_DELIVER | FLAG_NO_MORE_MESSAGES | (FLAG_UDHI if total > 1 else 0)
    pdus: list[str] = []
    for seq, segment in enumerate(segments, start=1):
        concat = Concat(concat_ref, total, seq, ref_bits) if total > 1 else None
        udl, user_data = _encode_user_data(segment, encoding, _concat_udh(concat))
        tpdu = bytes([first]) + originator + bytes([0, _dcs(encoding)]) + stamp + bytes([udl])
        pdus.append((sca + tpdu + user_data).hex().upper())
    return pdus


def encode_status_report(
    *,
    message_reference: int,
    recipient: str,
    timestamp: datetime,
    discharge: datetime,
    status: int,
    smsc: str | None = None,
) -> str:
    """An SMS-STATUS-REPORT PDU (hex, with the SCA) for the SUBMIT with `message_reference`."""
    if not 0 <= message_reference <= 0xFF:
        raise ValueError(f"message_reference must be 0..255, not {message_reference}")
    if not 0 <= status <= 0xFF:
        raise ValueError(f"status must be 0..255, not {status}")
    tpdu = (
        bytes([MTI_STATUS_REPORT | FLAG_NO_MORE_MESSAGES, message_reference])
        + _encode_address(recipient, alphanumeric=False)
        + _encode_timestamp(timestamp, "timestamp")
        + _encode_timestamp(discharge, "discharge")
        + bytes([status])
    )
    return (_encode_sca(smsc) + tpdu).hex().upper()


def relative_validity(seconds: int) -> int:
    """The TP-VP octet (relative format) for at least `seconds`: rounded up, capped at 63 weeks."""
    if seconds < 0:
        raise ValueError(f"validity_seconds must not be negative, not {seconds}")
    seconds = min(seconds, MAX_VALIDITY_SECONDS)
    if seconds <= _HALF_DAY:
        return max(_ceil_div(seconds, _FIVE_MINUTES) - 1, 0)
    if seconds <= _DAY:
        return 143 + _ceil_div(seconds - _HALF_DAY, _HALF_HOUR)
    if seconds <= 30 * _DAY:
        return 166 + _ceil_div(seconds, _DAY)
    return 192 + _ceil_div(seconds, _WEEK)


def relative_validity_seconds(octet: int) -> int:
    """How long a relative TP-VP octet lasts, in seconds (§9.2.3.12.1)."""
    if octet <= 143:
        return (octet + 1) * _FIVE_MINUTES
    if octet <= 167:
        return _HALF_DAY + (octet - 143) * _HALF_HOUR
    if octet <= 196:
        return (octet - 166) * _DAY
    return (octet - 192) * _WEEK


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def _check_part_count(total: int) -> int:
    # The concatenation UDH carries the part count in one octet.
    if total > 255:
        raise ValueError(f"text needs {total} parts; a concatenated SMS has at most 255")
    return total


def _check_concat_ref(ref: int, ref_bits: RefBits) -> None:
    if ref_bits not in (8, 16):
        raise ValueError(f"ref_bits must be 8 or 16, not {ref_bits!r}")
    if not 0 <= ref < (1 << ref_bits):
        raise ValueError(f"concat_ref {ref} does not fit in {ref_bits} bits")


def _concat_udh(concat: Concat | None) -> bytes:
    """The user data header of one part (with its length octet); empty for a single part."""
    if concat is None:
        return b""
    if concat.ref_bits == 8:
        return bytes([5, IEI_CONCAT_8, 3, concat.ref, concat.total, concat.seq])
    ref_high, ref_low = divmod(concat.ref, 256)
    return bytes([6, IEI_CONCAT_16, 4, ref_high, ref_low, concat.total, concat.seq])


def _dcs(encoding: Encoding, *, flash: bool = False) -> int:
    # 23.038 §4, general data coding: alphabet in bits 3-2; bit 4 + class 0 in bits 1-0 = flash.
    alphabet = {"gsm7": 0x00, "8bit": 0x04, "ucs2": 0x08}[encoding]
    return alphabet | (0x10 if flash else 0x00)


def _encode_user_data(text: str, encoding: Encoding, udh: bytes) -> tuple[int, bytes]:
    """(TP-UDL, TP-UD) for one segment behind `udh`."""
    if encoding == "ucs2":
        # surrogatepass: a pair spelled as two code points goes out as the pair it is.
        payload = udh + text.encode("utf-16-be", "surrogatepass")
        return len(payload), payload
    septets = _text_to_septets(text)
    # The UDH fills whole septets (fill bits after it), so the text starts septet-aligned.
    skip = _ceil_div(len(udh) * 8, 7)
    udl = skip + len(septets)
    packed = int.from_bytes(udh, "little")
    for index, septet in enumerate(septets, start=skip):
        packed |= septet << (7 * index)
    return udl, packed.to_bytes(_ceil_div(udl * 7, 8), "little")


def _text_to_septets(text: str) -> list[int]:
    septets: list[int] = []
    for char in text:
        if char in GSM7_BASIC_SEPTETS:
            septets.append(GSM7_BASIC_SEPTETS[char])
        elif char in GSM7_EXTENSION:
            septets += (GSM7_ESCAPE, GSM7_EXTENSION[char])
        else:
            raise ValueError(f"{char!r} is not in the GSM 7-bit alphabet")
    return septets


def _encode_address(number: str, *, alphanumeric: bool) -> bytes:
    """TP-DA / TP-OA / TP-RA: length in useful semi-octets, type, value (§9.1.2.5)."""
    if _NUMBER.fullmatch(number):
        digits = number.removeprefix("+")
        toa = TOA_INTERNATIONAL if number.startswith("+") else TOA_NATIONAL
        return bytes([len(digits), toa]) + _bcd(digits)
    if not alphanumeric:
        raise ValueError(f"{number!r} is not a phone number (+ and up to 20 digits, or digits)")
    if not number or encoding_of(number) != "gsm7":
        raise ValueError(f"sender {number!r} is neither a number nor GSM-7 text")
    septets = _text_to_septets(number)
    if len(septets) > MAX_ALPHANUMERIC_SEPTETS:
        raise ValueError(f"alphanumeric sender {number!r} is longer than 11 septets")
    packed = 0
    for index, septet in enumerate(septets):
        packed |= septet << (7 * index)
    value = packed.to_bytes(_ceil_div(len(septets) * 7, 8), "little")
    # The length counts the semi-octets that hold septet bits, not the padding.
    return bytes([_ceil_div(len(septets) * 7, 4), TOA_ALPHANUMERIC]) + value


def _encode_sca(smsc: str | None) -> bytes:
    """The SC address before the TPDU; its length counts octets, type included (§9.1.2.5)."""
    if smsc is None:
        return b"\x00"
    if not _NUMBER.fullmatch(smsc):
        raise ValueError(f"smsc {smsc!r} is not a phone number")
    digits = smsc.removeprefix("+")
    value = _bcd(digits)
    toa = TOA_INTERNATIONAL if smsc.startswith("+") else TOA_NATIONAL
    return bytes([1 + len(value), toa]) + value


def _bcd(digits: str) -> bytes:
    """Swapped semi-octets, F-filled: "12345" -> 21 43 F5."""
    padded = digits + "F" * (len(digits) % 2)
    return bytes.fromhex("".join(padded[i + 1] + padded[i] for i in range(0, len(padded), 2)))


def _encode_timestamp(when: datetime, what: str) -> bytes:
    """TP-SCTS / TP-DT: YY MM DD hh mm ss and the zone in signed quarter hours (§9.2.3.11)."""
    offset = when.utcoffset()
    if offset is None:
        raise ValueError(f"{what} must be timezone-aware")
    quarters, rest = divmod(abs(offset), _QUARTER_HOUR)
    if rest or quarters > 79:
        raise ValueError(f"{what} offset {offset} is not a whole number of quarter hours <= 79")
    if not 1969 <= when.year <= 2068:
        raise ValueError(f"{what} year {when.year} does not fit the two-digit year (1969..2068)")
    fields = [when.year % 100, when.month, when.day, when.hour, when.minute, when.second]
    octets = [(value % 10) << 4 | value // 10 for value in fields]
    # The zone is two swapped digits like the rest, with the sign in bit 3 of the first one.
    sign = 0x08 if offset < timedelta(0) else 0
    octets.append((quarters % 10) << 4 | quarters // 10 | sign)
    return bytes(octets)


# --- decoding -------------------------------------------------------------------------------


def decode(pdu: str, *, smsc: bool | None = None) -> Deliver | StatusReport | Submit:
    """Decode one PDU given as hex.

    `smsc=True`: the hex starts with the SC address (AT+CMGR, +CMGL, +CMT and +CDS give it so;
    callers that know should say so); False: a bare TPDU; None: try with the SCA first, then
    bare, and keep the reading whose lengths add up, preferring one whose address types are
    well formed. Lowercase hex and surrounding whitespace are fine. Raises PduError (never
    another exception) for anything malformed or truncated.
    """
    raw = _parse_hex(pdu)
    if smsc is True:
        return _decode_with_sca(_Reader(raw))
    if smsc is False:
        return _decode_tpdu(_Reader(raw), None)
    # Lengths alone leave rare PDUs that parse both ways (a bare DELIVER of a number full of
    # zeros, say). A misread shifts a length or a digit into a type-of-address octet, whose
    # bit 7 23.040 always sets; so first look for a reading where every address type has it,
    # then for any reading at all.
    for strict in (True, False):
        try:
            return _decode_with_sca(_Reader(raw, strict=strict))
        except PduError as error:
            with_sca = error
        try:
            return _decode_tpdu(_Reader(raw, strict=strict), None)
        except PduError as error:
            bare = error
    raise PduError(f"not a PDU with an SMSC prefix ({with_sca}) nor a bare TPDU ({bare})")


def _parse_hex(pdu: str) -> bytes:
    text = pdu.strip()
    if not text:
        raise PduError("empty PDU")
    match = _HEX.match(text)
    end = match.end() if match else 0
    if end < len(text):
        raise PduError(f"{text[end]!r} is not a hex digit", end // 2)
    if len(text) % 2:
        raise PduError("odd number of hex digits: the last octet is cut in half", len(text) // 2)
    return bytes.fromhex(text)


class _Reader:
    """Reads octets front to back; every shortfall is a PduError naming the field and octet."""

    def __init__(self, data: bytes, *, strict: bool = False) -> None:
        self.data = data
        self.pos = 0
        # Strict: refuse a type-of-address octet without bit 7 (kept lenient when the caller
        # says where the TPDU starts, since a sloppy sender should not cost us the message).
        self.strict = strict

    def octet(self, what: str) -> int:
        return self.take(1, what)[0]

    def take(self, count: int, what: str) -> bytes:
        if self.pos + count > len(self.data):
            have = len(self.data) - self.pos
            raise PduError(f"truncated: {what} needs {count} octet(s), {have} left", self.pos)
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def address_type(self, what: str) -> int:
        at = self.pos
        toa = self.octet(f"{what} type")
        if self.strict and not toa & 0x80:
            raise PduError(f"{what} type {toa:02X} lacks the bit 7 that 23.040 sets", at)
        return toa

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def expect_end(self) -> None:
        if self.pos < len(self.data):
            raise PduError(f"{self.remaining()} octet(s) left over after the PDU", self.pos)


def _decode_with_sca(reader: _Reader) -> Deliver | StatusReport | Submit:
    length = reader.octet("SMSC address length")
    if length > MAX_SCA_OCTETS:
        raise PduError(f"SMSC address length {length} is over {MAX_SCA_OCTETS} octets", 0)
    smsc = None
    if length:
        toa = reader.address_type("SMSC address")
        value_at = reader.pos
        value = reader.take(length - 1, "SMSC address")
        digits = _decode_semi_octets(value, 2 * len(value), value_at)
        if digits:
            smsc = "+" + digits if toa & TON_MASK == TON_INTERNATIONAL else digits
    return _decode_tpdu(reader, smsc)


def _decode_tpdu(reader: _Reader, smsc: str | None) -> Deliver | StatusReport | Submit:
    first = reader.octet("first octet")
    mti = first & 0x03
    if mti == MTI_DELIVER:
        return _decode_deliver(reader, first, smsc)
    if mti == MTI_SUBMIT:
        return _decode_submit(reader, first, smsc)
    if mti == MTI_STATUS_REPORT:
        return _decode_status_report(reader, first, smsc)
    raise PduError("message type 3 is reserved", reader.pos - 1)


def _decode_deliver(reader: _Reader, first: int, smsc: str | None) -> Deliver:
    number = _read_address(reader, "originating address")
    reader.octet("protocol identifier")
    encoding, message_class = _read_dcs(reader)
    timestamp = _read_timestamp(reader, "service centre time stamp")
    text, data, concat = _read_user_data(reader, encoding, udhi=bool(first & FLAG_UDHI))
    return Deliver(smsc, number, text, timestamp, encoding, concat, data, message_class)


def _decode_submit(reader: _Reader, first: int, smsc: str | None) -> Submit:
    reference = reader.octet("message reference")
    number = _read_address(reader, "destination address")
    reader.octet("protocol identifier")
    encoding, message_class = _read_dcs(reader)
    validity_seconds, validity_until = _read_validity(reader, (first >> 3) & 0x03)
    text, data, concat = _read_user_data(reader, encoding, udhi=bool(first & FLAG_UDHI))
    return Submit(
        smsc=smsc,
        message_reference=reference,
        number=number,
        text=text,
        encoding=encoding,
        concat=concat,
        status_report_requested=bool(first & FLAG_STATUS_REPORT),
        validity_seconds=validity_seconds,
        data=data,
        validity_until=validity_until,
        message_class=message_class,
    )


def _decode_status_report(reader: _Reader, first: int, smsc: str | None) -> StatusReport:
    reference = reader.octet("message reference")
    number = _read_address(reader, "recipient address")
    timestamp = _read_timestamp(reader, "service centre time stamp")
    discharge = _read_timestamp(reader, "discharge time")
    status = reader.octet("status")
    # Optional tail (§9.2.2.3): TP-PI, then the PID, DCS and user data it announces. We do not
    # keep them (a report's text is informative only) but check that their lengths add up.
    if reader.remaining():
        indicator = reader.octet("parameter indicator")
        extension = indicator
        while extension & 0x80:
            extension = reader.octet("parameter indicator extension")
        if indicator & 0x01:
            reader.octet("protocol identifier")
        encoding: Encoding = "gsm7"
        if indicator & 0x02:
            encoding, _ = _read_dcs(reader)
        if indicator & 0x04:
            _read_user_data(reader, encoding, udhi=bool(first & FLAG_UDHI))
    reader.expect_end()
    return StatusReport(smsc, reference, number, timestamp, discharge, status)


def _read_address(reader: _Reader, what: str) -> str:
    length_at = reader.pos
    length = reader.octet(f"{what} length")
    if length > MAX_ADDRESS_DIGITS:
        raise PduError(f"{what} length {length} is over {MAX_ADDRESS_DIGITS} digits", length_at)
    toa = reader.address_type(what)
    value_at = reader.pos
    value = reader.take(_ceil_div(length, 2), what)
    if toa & TON_MASK == TON_ALPHANUMERIC:
        septets = _unpack_septets(value, length * 4 // 7)
        return _septets_to_text(septets)
    # Some senders count the filler in the length; a final F is dropped either way.
    digits = _decode_semi_octets(value, length, value_at)
    return "+" + digits if toa & TON_MASK == TON_INTERNATIONAL else digits


def _decode_semi_octets(value: bytes, count: int, at: int) -> str:
    """The first `count` swapped semi-octet digits of `value`, less a final F (filler)."""
    nibbles = [nibble for octet in value for nibble in (octet & 0x0F, octet >> 4)][:count]
    if nibbles and nibbles[-1] == _FILLER:
        nibbles.pop()
    for index, nibble in enumerate(nibbles):
        if nibble == _FILLER:
            raise PduError("filler digit F inside an address", at + index // 2)
    return "".join(_BCD_DIGITS[nibble] for nibble in nibbles)


def _read_dcs(reader: _Reader) -> tuple[Encoding, int | None]:
    """Alphabet and message class from TP-DCS (23.038 §4)."""
    dcs = reader.octet("data coding scheme")
    group = dcs >> 4
    if group <= 0x7:
        # General data coding (01xx only adds "delete after reading"). A compressed text
        # (bit 5, TS 23.042) cannot be shown; hand it over as data rather than fail.
        alphabet = (dcs >> 2) & 0x03
        message_class = dcs & 0x03 if dcs & 0x10 else None
        if dcs & 0x20 or alphabet == 1:
            return "8bit", message_class
        return ("ucs2" if alphabet == 2 else "gsm7"), message_class
    if group == 0xE:
        return "ucs2", None  # message waiting indication, store, UCS-2
    if group == 0xF:
        return ("8bit" if dcs & 0x04 else "gsm7"), dcs & 0x03
    # 1100/1101 (message waiting, GSM-7) and the reserved groups 1000-1011, which 23.038 says
    # to read as the default alphabet.
    return "gsm7", None


def _read_validity(reader: _Reader, vpf: int) -> tuple[int | None, datetime | None]:
    """TP-VP in the format TP-VPF names (§9.2.3.12): (seconds, absolute time)."""
    if vpf == 0:
        return None, None
    if vpf == 2:
        return relative_validity_seconds(reader.octet("validity period")), None
    if vpf == 3:
        return None, _read_timestamp(reader, "validity period")
    # Enhanced format (§9.2.3.12.3): 7 octets; the first says how the next ones are meant.
    start = reader.pos
    octets = reader.take(7, "enhanced validity period")
    kind = octets[0] & 0x07
    if kind == 1:
        return relative_validity_seconds(octets[1]), None
    if kind == 2:
        return octets[1], None
    if kind == 3:
        fields = _decimal_fields(octets[1:4], start + 1, "enhanced validity period")
        hours, minutes, seconds = fields
        return hours * 3600 + minutes * 60 + seconds, None
    return None, None


def _read_timestamp(reader: _Reader, what: str) -> datetime:
    start = reader.pos
    octets = reader.take(7, what)
    year, month, day, hour, minute, second = _decimal_fields(octets[:6], start, what)
    zone = octets[6]
    tens, units = zone & 0x07, zone >> 4
    if units > 9:
        raise PduError(f"{what}: time zone {zone:02X} is not decimal", start + 6)
    quarters = tens * 10 + units
    offset = _QUARTER_HOUR * quarters * (-1 if zone & 0x08 else 1)
    # A two-digit year, read like POSIX strptime's %y: 69-99 are 19xx, 00-68 are 20xx.
    year += 1900 if year >= 69 else 2000
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=timezone(offset))
    except ValueError as error:
        raise PduError(f"{what} is not a real date and time: {error}", start) from None


def _decimal_fields(octets: bytes, start: int, what: str) -> list[int]:
    values = []
    for index, octet in enumerate(octets):
        low, high = octet & 0x0F, octet >> 4
        if low > 9 or high > 9:
            raise PduError(f"{what}: {octet:02X} is not two decimal digits", start + index)
        values.append(low * 10 + high)
    return values


def _read_user_data(
    reader: _Reader, encoding: Encoding, *, udhi: bool
) -> tuple[str, bytes | None, Concat | None]:
    """TP-UDL and TP-UD: (text, 8-bit payload, concatenation), and nothing may follow them."""
    udl_at = reader.pos
    udl = reader.octet("user data length")
    if encoding == "gsm7":
        if udl > MAX_UD_SEPTETS:
            raise PduError(f"user data length {udl} is over {MAX_UD_SEPTETS} septets", udl_at)
        size = _ceil_div(udl * 7, 8)
    else:
        if udl > MAX_UD_OCTETS:
            raise PduError(f"user data length {udl} is over {MAX_UD_OCTETS} octets", udl_at)
        size = udl
    start = reader.pos
    user_data = reader.take(size, "user data")
    reader.expect_end()
    concat = None
    header_size = 0
    if udhi:
        if not user_data:
            raise PduError("the header flag is set but there is no user data", udl_at)
        header_size = user_data[0] + 1
        if header_size > size:
            raise PduError(f"user data header of {header_size} octets overruns the data", start)
        concat = _parse_udh(user_data[1:header_size], start + 1)
    if encoding == "gsm7":
        skip = _ceil_div(header_size * 8, 7)
        if skip > udl:
            raise PduError("user data header is longer than the user data length", start)
        return _septets_to_text(_unpack_septets(user_data, udl)[skip:]), None, concat
    body = user_data[header_size:]
    if encoding == "ucs2":
        if len(body) % 2:
            raise PduError("UCS-2 text has an odd number of octets", start + header_size)
        # A lone surrogate (a sender that split a pair) becomes U+FFFD: a str that cannot be
        # written as UTF-8 would break storage and JSON further down.
        return body.decode("utf-16-be", "replace"), None, concat
    return "", bytes(body), concat


def _parse_udh(header: bytes, at: int) -> Concat | None:
    """The concatenation element of a user data header, if any (§9.2.3.24)."""
    concat = None
    index = 0
    while index < len(header):
        if index + 2 > len(header):
            raise PduError("truncated information element in the user data header", at + index)
        iei, size = header[index], header[index + 1]
        body = header[index + 2 : index + 2 + size]
        if len(body) < size:
            raise PduError(f"information element {iei:02X} overruns the header", at + index)
        found = None
        if iei == IEI_CONCAT_8 and size == 3:
            found = Concat(body[0], body[1], body[2], 8)
        elif iei == IEI_CONCAT_16 and size == 4:
            found = Concat(body[0] << 8 | body[1], body[2], body[3], 16)
        # §9.2.3.24.1: a part number of 0 or above the total means "ignore the element".
        if found is not None and 1 <= found.seq <= found.total:
            concat = found
        index += 2 + size
    return concat


def _unpack_septets(octets: bytes, count: int) -> list[int]:
    packed = int.from_bytes(octets, "little")
    return [(packed >> (7 * index)) & 0x7F for index in range(count)]


def _septets_to_text(septets: list[int]) -> str:
    chars: list[str] = []
    index = 0
    while index < len(septets):
        septet = septets[index]
        index += 1
        if septet != GSM7_ESCAPE:
            chars.append(GSM7_BASIC[septet])
            continue
        if index == len(septets):
            break  # a lone ESC at the end is no character
        escaped = septets[index]
        index += 1
        if escaped == GSM7_ESCAPE:
            chars.append(" ")  # 23.038: ESC ESC is kept for another table; show a space
        else:
            # 23.038: an unknown escape shows the default-alphabet character.
            chars.append(GSM7_EXTENSION_CHARS.get(escaped, GSM7_BASIC[escaped]))
    return "".join(chars)


# --- JSON -----------------------------------------------------------------------------------


def as_json(decoded: Deliver | StatusReport | Submit) -> dict[str, Any]:
    """A JSON-ready dict for `shopbell pdu decode`: type, number, text, timestamp, encoding,
    concat, then the type's own fields. Times are ISO-8601 with their offset, bytes are hex."""
    if isinstance(decoded, StatusReport):
        if decoded.delivered:
            outcome = "delivered"
        elif decoded.failed:
            outcome = "failed"
        elif decoded.pending:
            outcome = "pending"
        else:
            outcome = "unknown"
        return {
            "type": "status-report",
            "number": decoded.number,
            "text": None,
            "timestamp": decoded.timestamp.isoformat(),
            "encoding": None,
            "concat": None,
            "smsc": decoded.smsc,
            "message_reference": decoded.message_reference,
            "discharge": decoded.discharge.isoformat(),
            "status": decoded.status,
            "outcome": outcome,
        }
    common = {
        "number": decoded.number,
        "text": decoded.text,
        "encoding": decoded.encoding,
        "concat": _concat_json(decoded.concat),
        "smsc": decoded.smsc,
        "data": decoded.data.hex().upper() if decoded.data is not None else None,
        "message_class": decoded.message_class,
    }
    if isinstance(decoded, Deliver):
        return {"type": "deliver", "timestamp": decoded.timestamp.isoformat(), **common}
    return {
        "type": "submit",
        "timestamp": None,
        **common,
        "message_reference": decoded.message_reference,
        "status_report_requested": decoded.status_report_requested,
        "validity_seconds": decoded.validity_seconds,
        "validity_until": (
            decoded.validity_until.isoformat() if decoded.validity_until is not None else None
        ),
    }


def _concat_json(concat: Concat | None) -> dict[str, int] | None:
    if concat is None:
        return None
    return {
        "ref": concat.ref,
        "total": concat.total,
        "seq": concat.seq,
        "ref_bits": concat.ref_bits,
    }
