"""Sending e-mail notifications over SMTP (host, port, TLS mode and credentials from the config)."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage

from node.config import SmtpSection
from protocol import SatchelError

TIMEOUT = 30
_NO_SUCH_MAILBOX = frozenset({550, 551, 553})  # RFC 5321: mailbox unavailable, not local, name not allowed


class MailFailed(SatchelError):
    """The SMTP server refused or could not be reached; the message stays in the outbox and is retried."""

    code = "mail.failed"
    default_hint = "check the [smtp] settings in satchel.toml and that the mail server is reachable"

    def __init__(self, message: str, *, server_down: bool = False, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        # The server itself took no mail (unreachable, timed out, refused the sender or the login): every other
        # e-mail would fail alike now, so they wait for the next try rather than each wait out the timeout.
        self.server_down = server_down


class MailRefused(SatchelError):
    """The SMTP server refused the recipient's mailbox for good (550, 551 or 553)."""

    code = "mail.refused"
    default_hint = "check the operator's e-mail address (`satchel users list`); the inbox still holds the notice"


def build_message(smtp: SmtpSection, *, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = smtp.sender or "satchel@localhost"
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    return message


def _send(smtp: SmtpSection, message: EmailMessage) -> None:
    context = ssl.create_default_context()
    try:
        if smtp.tls == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=TIMEOUT, context=context)
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=TIMEOUT)
        with client:
            if smtp.tls == "starttls":
                client.starttls(context=context)
            if smtp.username:
                client.login(smtp.username, smtp.password)
            client.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        # Only "no such mailbox" is this address's for good; a relay, sender or authentication refusal is the
        # node's setup, which its operator fixes, and the e-mail goes then.
        if all(code in _NO_SUCH_MAILBOX for code, _ in exc.recipients.values()):
            raise MailRefused(f"{smtp.host} refused {', '.join(exc.recipients)} for good") from exc
        raise MailFailed(f"{smtp.host} refused {', '.join(exc.recipients)}") from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise MailFailed(
            f"could not send mail through {smtp.host}:{smtp.port}: {type(exc).__name__}", server_down=True
        ) from exc


async def send(smtp: SmtpSection, message: EmailMessage) -> None:
    """smtplib blocks; run it in a worker thread so the event loop keeps serving peers."""
    await asyncio.to_thread(_send, smtp, message)
