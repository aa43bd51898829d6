"""`shopbell pdu`: encode and decode SMS PDUs, for debugging a real modem."""

from __future__ import annotations

import json

import click

from daemon.admin.cli.base import CONTEXT, fail


@click.group(context_settings=CONTEXT)
def pdu() -> None:
    """Encode and decode SMS PDUs (for debugging a real modem)."""


@pdu.command("decode")
@click.argument("hex_pdu", metavar="HEX")
@click.option(
    "--smsc/--no-smsc",
    "with_smsc",
    default=None,
    help="Whether HEX starts with the SMS centre's address (default: work it out).",
)
def pdu_decode(hex_pdu: str, with_smsc: bool | None) -> None:
    """Decode one PDU (as AT+CMGR or AT+CMGL show it) and print it as JSON."""
    from providers.modem.pdu import PduError
    from providers.modem.pdu import as_json as pdu_json
    from providers.modem.pdu import decode as decode_pdu

    try:
        decoded = decode_pdu(hex_pdu, smsc=with_smsc)
    except PduError as exc:
        fail(f"not a PDU shopbell can read: {exc}")
    click.echo(json.dumps(pdu_json(decoded), indent=2, ensure_ascii=False))


@pdu.command("encode")
@click.option("--to", "to", required=True, help="Recipient, e.g. +33612345678.")
@click.option("--no-report", is_flag=True, help="Do not ask for a delivery report.")
@click.option("--validity", type=click.IntRange(1), default=None, help="Validity in seconds.")
@click.argument("text")
def pdu_encode(to: str, no_report: bool, validity: int | None, text: str) -> None:
    """Encode TEXT to --to as SMS-SUBMIT PDUs (one per segment) and print them as JSON."""
    from providers.modem.pdu import PduError, encode_submit

    try:
        parts = encode_submit(
            to, text, concat_ref=1, status_report=not no_report, validity_seconds=validity
        )
    except (PduError, ValueError) as exc:
        fail(str(exc))
    click.echo(
        json.dumps(
            [
                {
                    "pdu": part.pdu,
                    "tpdu_length": part.tpdu_length,
                    "command": f"AT+CMGS={part.tpdu_length}",
                    "text": part.text,
                    "concat": None
                    if part.concat is None
                    else {
                        "ref": part.concat.ref,
                        "total": part.concat.total,
                        "seq": part.concat.seq,
                    },
                }
                for part in parts
            ],
            indent=2,
            ensure_ascii=False,
        )
    )
