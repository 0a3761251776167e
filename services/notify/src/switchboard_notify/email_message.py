"""The e-mail of a call note: German MIME, plain text and HTML from Jinja2 templates (R-NOTE-1).

For a secrecy-bound tenant (law, medicine, tax; R-SEC-3) the templates receive no caller and
no concern at all, so no template change can leak them: only that a call came in, when, for
whom, and a link to read the note after signing in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.charset import QP, Charset
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.utils import format_datetime, formataddr, parseaddr
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from switchboard_contracts.consent import ConsentPurpose

from .domain import NoteCopy
from .formatting import berlin_time, display_phone, one_line, spoken_duration


@dataclass(frozen=True, slots=True)
class NoteView:
    """Everything a template may show; the caller's fields stay None for secrecy-bound tenants."""

    secret: bool
    when: str
    contact_person: str | None
    link: str
    caller_name: str | None = None
    company: str | None = None
    phone: str | None = None
    email: str | None = None
    concern: str | None = None
    duration: str | None = None


def note_link(template: str, note: NoteCopy) -> str:
    """Where the client reads the note (NOTIFY_NOTE_LINK_TEMPLATE)."""
    return template.format(
        note_id=quote(note.note_id, safe=""), tenant_id=quote(note.tenant_id, safe="")
    )


def note_view(note: NoteCopy, *, secret: bool, link: str) -> NoteView:
    """What the client may be told about `note`."""
    contact = one_line(note.contact_person) if note.contact_person else None
    if secret or note.caller is None:
        return NoteView(True, berlin_time(note.started_at), contact, link)
    caller = note.caller
    return NoteView(
        secret=False,
        when=berlin_time(note.started_at),
        contact_person=contact,
        link=link,
        caller_name=one_line(caller.name),
        company=one_line(caller.company) if caller.company else None,
        phone=display_phone(caller.phone),
        email=caller.email,
        concern=note.concern,
        duration=spoken_duration(note.duration_seconds),
    )


def subject_line(view: NoteView) -> str:
    """`Anruf von Erika Mustermann (ACME) für Frau Meyer`; no caller for secrecy-bound tenants."""
    target = f" für {view.contact_person}" if view.contact_person else ""
    if view.secret or view.caller_name is None:
        return f"Neuer Anruf{target}"
    company = f" ({view.company})" if view.company else ""
    return one_line(f"Anruf von {view.caller_name}{company}{target}")


_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP  # quoted-printable: German text stays mostly readable on the wire


def _text_part(text: str, subtype: str) -> MIMENonMultipart:
    part = MIMENonMultipart("text", subtype, charset="utf-8")
    part.set_payload(text, _UTF8)
    return part


class MailComposer:
    """Renders the MIME message of one delivery."""

    def __init__(self, *, mail_from: str, link_template: str, unsubscribe_to: str) -> None:
        self._from = formataddr(parseaddr(mail_from), charset="utf-8")
        self._link_template = link_template
        self._unsubscribe_to = unsubscribe_to
        self._templates = Environment(
            loader=PackageLoader("switchboard_notify", "templates"),
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )

    def compose(
        self,
        note: NoteCopy,
        *,
        secret: bool,
        to: str,
        message_id: str,
        purpose: ConsentPurpose,
        now: datetime,
    ) -> MIMEMultipart:
        """The message for `to`, with the delivery's stable Message-ID.

        Built with the `email.mime` classes (policy compat32): a tenth of the CPU of
        `EmailMessage`'s header registry, which parses every header it is given.
        """
        view = note_view(note, secret=secret, link=note_link(self._link_template, note))
        name = "note_secret" if view.secret else "note"
        text = self._templates.get_template(f"{name}.txt.j2").render(view=view)
        html = self._templates.get_template(f"{name}.html.j2").render(view=view)
        message = MIMEMultipart("alternative")
        message["Subject"] = Header(subject_line(view), "utf-8")  # type: ignore[assignment]
        message["From"] = self._from
        message["To"] = to
        message["Date"] = format_datetime(now)
        message["Message-ID"] = message_id
        message["Content-Language"] = "de"
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to us
        message["X-Auto-Response-Suppress"] = "All"
        if purpose is ConsentPurpose.MARKETING:
            message["List-Unsubscribe"] = f"<mailto:{self._unsubscribe_to}?subject=unsubscribe>"
        message.attach(_text_part(text, "plain"))
        message.attach(_text_part(html, "html"))
        return message
