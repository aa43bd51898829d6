"""Hypothesis against what parses the outside world: PDUs from the modem, Twilio's webhook forms
and signatures, inbound keywords. Any input gives a result or our own clear error."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode
from xml.etree import ElementTree

from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from daemon.services.inbound import match_keyword, normalise_sender
from providers.modem import pdu
from providers.twilio.webhook import (
    InboundSms,
    StatusCallback,
    is_valid_signature,
    public_request_url,
    twiml,
)

FUZZ = settings(max_examples=300, derandomize=True, deadline=None)
# What a form on the wire can hold (UTF-8: no lone surrogates).
wire_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)
pairs = st.lists(
    st.tuples(
        st.one_of(
            st.sampled_from(["MessageSid", "From", "To", "Body", "MessageStatus"]), wire_text
        ),
        wire_text,
    ),
    max_size=10,
)
STAMP = datetime(2026, 5, 1, 12, 30, tzinfo=UTC)


def _decode_or_pdu_error(text: str, smsc: bool | None) -> None:
    try:
        decoded = pdu.decode(text, smsc=smsc)
    except pdu.PduError as error:
        assert str(error), "a PduError says what is wrong"
        return
    assert isinstance(decoded, pdu.Deliver | pdu.StatusReport | pdu.Submit)
    json.dumps(pdu.as_json(decoded))  # whatever decodes can be shown


@FUZZ
@given(st.text(max_size=200), st.sampled_from([True, False, None]))
def test_pdu_decoder_on_any_text_gives_a_pdu_or_a_pdu_error(text: str, smsc: bool | None) -> None:
    _decode_or_pdu_error(text, smsc)


@FUZZ
@given(st.binary(max_size=200), st.sampled_from([True, False, None]))
def test_pdu_decoder_on_any_octets_gives_a_pdu_or_a_pdu_error(
    raw: bytes, smsc: bool | None
) -> None:
    _decode_or_pdu_error(raw.hex().upper(), smsc)


@FUZZ
@given(
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=200),
    st.data(),
)
def test_pdu_decoder_on_a_damaged_real_pdu_gives_a_pdu_or_a_pdu_error(
    text: str, data: st.DataObject
) -> None:
    # Real DELIVERs (GSM-7, UCS-2, concatenated) with octets overwritten, cut or added: the
    # noise a serial line and a half-written +CMGL make.
    parts = pdu.encode_deliver("+33612345678", text, STAMP, smsc="+4917600000000", concat_ref=7)
    raw = bytearray(bytes.fromhex(data.draw(st.sampled_from(parts))))
    for _ in range(data.draw(st.integers(1, 4))):
        action = data.draw(st.sampled_from(["overwrite", "cut", "add"]))
        at = data.draw(st.integers(0, len(raw)))
        if action == "overwrite" and at < len(raw):
            raw[at] = data.draw(st.integers(0, 255))
        elif action == "cut":
            del raw[at:]
        else:
            raw[at:at] = bytes([data.draw(st.integers(0, 255))])
    _decode_or_pdu_error(raw.hex(), data.draw(st.sampled_from([True, None])))


@FUZZ
@given(st.text(max_size=300))
def test_any_webhook_body_parses_to_a_form_or_a_clear_value_error(body: str) -> None:
    # What daemon/api/webhooks.py does with the raw body, then both form readers.
    form = parse_qsl(body, keep_blank_values=True)
    for parse in (InboundSms.from_form, StatusCallback.from_form):
        try:
            parsed = parse(form)
        except ValueError as error:
            assert "MessageSid" in str(error), "the error names the missing field"
            continue
        assert parsed.message_sid


@FUZZ
@given(pairs)
def test_inbound_form_keeps_what_twilio_posted(form: list[tuple[str, str]]) -> None:
    first = {}
    for name, value in form:
        first.setdefault(name, value)
    try:
        sms = InboundSms.from_form(form)
    except ValueError:
        assert not first.get("MessageSid") or not first.get("From")
        return
    assert sms.from_number == first["From"]
    assert sms.body == first.get("Body", "")


@FUZZ
@given(
    token=wire_text,
    url=wire_text,
    form=pairs,
    signature=st.one_of(st.none(), wire_text),
    public_url=st.one_of(st.none(), wire_text),
)
def test_signature_check_answers_true_or_false_for_anything(
    token: str, url: str, form: list[tuple[str, str]], signature: str | None, public_url: str | None
) -> None:
    checked_url = public_request_url(public_url, "http://127.0.0.1:8765/sms?" + urlencode(form))
    assert is_valid_signature(token, checked_url, form, signature) in (True, False)
    assert is_valid_signature(token, url, form, signature) in (True, False)


class _Grouped(dict[str, list[str]]):
    def getall(self, key: str) -> list[str]:
        return self[key]


@FUZZ
@given(token=wire_text.filter(bool), form=pairs, path=wire_text)
def test_twilios_own_signature_is_accepted_and_any_change_refused(
    token: str, form: list[tuple[str, str]], path: str
) -> None:
    url = "https://shop.example/sms?" + urlencode({"p": path})
    grouped = _Grouped()
    for name, value in form:
        grouped.setdefault(name, []).append(value)
    signature = RequestValidator(token).compute_signature(url, grouped)
    assert is_valid_signature(token, url, form, signature)
    assert not is_valid_signature(token, url + "x", form, signature)
    assert not is_valid_signature(token, url, [*form, ("Extra", "1")], signature)


@FUZZ
@given(st.text(max_size=100))
def test_any_reply_text_makes_twiml_that_parses(text: str) -> None:
    root = ElementTree.fromstring(twiml(text))
    assert root.tag == "Response"


keyword = st.sampled_from(["STOP", "stop", "Unsubscribe", "start", "HELP", "info", "Quit"])
noise = st.text(st.sampled_from(" \t\n.!?¡¿«»\"'-,;:…。"), max_size=4)


@FUZZ
@given(st.text(max_size=80))
def test_any_inbound_body_is_a_keyword_or_an_ordinary_message(body: str) -> None:
    match = match_keyword(body)
    assert match is None or match.kind in ("stop", "start", "help")


@FUZZ
@given(keyword, noise, noise)
def test_a_keyword_with_punctuation_and_spaces_around_it_still_counts(
    word: str, before: str, after: str
) -> None:
    match = match_keyword(before + word + after)
    assert match is not None and match.word == word.upper()


@FUZZ
@given(st.text(max_size=40), st.sampled_from(["", "FR", "IN", "gb", "ZZ", "XX"]))
def test_any_sender_is_kept_as_given_or_made_e164(sender: str, region: str) -> None:
    normalised = normalise_sender(sender, region)
    assert normalised == sender or (normalised.startswith("+") and normalised[1:].isdigit())
