"""Sending a sales report: an e-mail (text plus HTML with a small table) to each recipient of
[reports] recipients, and a one-SMS summary to [reports] owner_phone, all through the outbox,
so a mail server that refuses or is away only delays them (retries with backoff)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import date, timedelta

from daemon.config import Settings
from daemon.services.backoffice import sales_report
from daemon.services.backoffice.money import to_text
from daemon.services.backoffice.reports import Reports
from daemon.services.backoffice.sales_report import ReportKind, SalesReport
from daemon.services.backoffice.service import BackOffice
from daemon.services.outbox.service import EnqueueRequest, Outbox
from providers.sms_text import analyze
from providers.smtp.provider import email_body
from storage.models import Report


@dataclass(frozen=True)
class SentReport:
    """What a report run stored and queued."""

    report: SalesReport
    stored: Report
    text: str
    message_ids: tuple[int, ...]


def span(report: SalesReport) -> str:
    if report.first == report.last:
        return report.first.isoformat()
    return f"{report.first.isoformat()} to {report.last.isoformat()}"


def subject(report: SalesReport, shop: str) -> str:
    return f"{shop}: {report.kind} sales report, {span(report)}"


def html_report(report: SalesReport, currency: str, shop: str) -> str:
    """The report as a small HTML page: the totals, then a table per day and of top products."""

    def money(minor: int) -> str:
        return html.escape(f"{to_text(minor, currency)} {currency}")

    def table(head: list[str], rows: list[list[str]]) -> str:
        cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
        return f'<table border="1" cellpadding="4" cellspacing="0"><tr>{cells}</tr>{body}</table>'

    parts = [
        f"<h2>{html.escape(subject(report, shop))}</h2>",
        table(
            ["orders", "items sold", "sales"],
            [[str(report.orders), str(report.items), money(report.amount_minor)]],
        ),
    ]
    if report.kind == "weekly":
        parts.append("<h3>per day</h3>")
        parts.append(
            table(
                ["day", "orders", "sales"],
                [[d.day.isoformat(), str(d.orders), money(d.amount_minor)] for d in report.days],
            )
        )
    parts.append("<h3>top products</h3>")
    if report.top:
        parts.append(
            table(
                ["product", "sold", "sales"],
                [[html.escape(p.name), str(p.quantity), money(p.amount_minor)] for p in report.top],
            )
        )
    else:
        parts.append("<p>none</p>")
    parts.append(f"<h3>customers over {money(report.threshold_minor)} in a day</h3>")
    if report.high_value:
        parts.append(
            table(
                ["customer", "day", "spent"],
                [
                    [
                        html.escape(u.username or str(u.account_id)),
                        u.day.isoformat(),
                        money(u.spent_minor),
                    ]
                    for u in report.high_value
                ],
            )
        )
    else:
        parts.append("<p>none</p>")
    return "<html><body>" + "\n".join(parts) + "</body></html>\n"


def sms_summary(report: SalesReport, currency: str, shop: str) -> str:
    """One SMS segment: the shop's name is shortened (or dropped) to keep it to one."""
    tail = (
        f"{report.kind} {span(report)}: {report.orders} orders, {report.items} items, "
        f"{to_text(report.amount_minor, currency)} {currency}"
    )
    name = shop
    while name:
        text = f"{name} {tail}"
        if analyze(text).segments == 1:
            return text
        name = name[:-1].rstrip()
    return tail


async def send(
    outbox: Outbox, settings: Settings, report: SalesReport, currency: str
) -> tuple[int, ...]:
    """Queue the report's e-mails and the owner's SMS; returns the messages' ids."""
    shop = settings.shop.name
    ids: list[int] = []
    if settings.reports.recipients:
        body = email_body(
            sales_report.text(report, currency, shop), html_report(report, currency, shop)
        )
        for recipient in settings.reports.recipients:
            queued = await outbox.enqueue(
                EnqueueRequest(
                    channel="email",
                    recipient=recipient,
                    body=body,
                    kind="report",
                    subject=subject(report, shop),
                )
            )
            ids.append(queued.message.id)
    if settings.reports.owner_phone:
        queued = await outbox.enqueue(
            EnqueueRequest(
                channel="sms",
                recipient=settings.reports.owner_phone,
                body=sms_summary(report, currency, shop),
                kind="report",
            )
        )
        ids.append(queued.message.id)
    return tuple(ids)


def previous_day(office: BackOffice, kind: ReportKind = "daily") -> date:
    """The day a report made now is about, in the shop's time zone: yesterday, or for a
    weekly one the last Sunday before today (the last whole Monday-to-Sunday week)."""
    today = Reports(office).today()
    if kind == "weekly":
        return today - timedelta(days=today.weekday() + 1)
    return today - timedelta(days=1)


async def run(
    office: BackOffice,
    outbox: Outbox | None,
    settings: Settings,
    kind: ReportKind,
    day: date | None = None,
) -> SentReport:
    """Build and store the report of `day` (default: `previous_day`), and queue it when
    `outbox` is given."""
    report = await sales_report.build(office, kind, day or previous_day(office, kind))
    stored = await sales_report.save(office, report)
    ids = await send(outbox, settings, report, office.currency) if outbox is not None else ()
    return SentReport(
        report, stored, sales_report.text(report, office.currency, settings.shop.name), ids
    )
