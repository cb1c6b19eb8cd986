"""E-mail through an SMTP relay: STARTTLS (certificate verified) and authentication.

One SMTP connection per batch. The recipient is the address; the subject is the payload's
``title`` and the text its ``text`` (or ``body``). ``X-Isocheck-Idempotency-Key`` and a
``Message-ID`` derived from the key let mail systems and people spot the (rare) duplicate.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from collections.abc import Sequence
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

from server.notify.channel import OutboxMessage, Outcome, Result

#: Seconds for connecting and for each SMTP command.
TIMEOUT_S = 30.0
#: SMTP reply codes meaning "this mailbox does not exist / is not accepted here".
BAD_MAILBOX_CODES = frozenset({550, 551, 553})


class EmailChannel:
    """Sends each message as a plain-text e-mail from ``sender``."""

    name = "email"
    max_batch = 50

    def __init__(
        self,
        *,
        host: str,
        port: int = 587,
        sender: str,
        user: str = "",
        password: str = "",
        starttls: bool = True,
        ca_file: Path | None = None,
    ) -> None:
        if not host or not sender:
            raise ValueError("an SMTP host and a From address are required")
        self.host, self.port, self.sender = host, port, sender
        self.user, self.password, self.starttls = user, password, starttls
        self.ca_file = ca_file

    def send_batch(self, messages: Sequence[OutboxMessage]) -> list[Result]:
        """1. Connect, STARTTLS (verifying the certificate), log in.
        2. Send each message; a refused mailbox is that message's result, not the batch's.
        3. A broken connection fails the rest of the batch as retryable."""
        results: list[Result] = []
        try:
            with self._connect() as smtp:
                for m in messages:
                    results.append(self._send_one(smtp, m))
        except (smtplib.SMTPException, OSError) as exc:
            detail = f"{exc.__class__.__name__}: {exc}"[:500]
            results.extend(Result(Outcome.retry, detail) for _ in messages[len(results) :])
        return results

    def _connect(self) -> smtplib.SMTP:
        smtp = smtplib.SMTP(self.host, self.port, timeout=TIMEOUT_S)
        try:
            smtp.ehlo()
            if self.starttls:
                context = ssl.create_default_context(
                    cafile=str(self.ca_file) if self.ca_file else None
                )
                smtp.starttls(context=context)
                smtp.ehlo()
            if self.user:
                smtp.login(self.user, self.password)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _send_one(self, smtp: smtplib.SMTP, m: OutboxMessage) -> Result:
        try:
            msg = build_email(m, sender=self.sender)
        except (ValueError, TypeError, IndexError) as exc:
            return Result(Outcome.invalid_recipient, f"bad address {m.recipient!r}: {exc}")
        try:
            smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            detail = f"SMTP {code}: {_text(text)}"
            if code in BAD_MAILBOX_CODES:
                return Result(Outcome.invalid_recipient, detail)
            return Result(Outcome.retry if 400 <= code < 500 else Outcome.permanent, detail)
        except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as exc:
            detail = f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)}"
            return Result(
                Outcome.retry if 400 <= exc.smtp_code < 500 else Outcome.permanent, detail
            )
        return Result.ok()


def build_email(m: OutboxMessage, *, sender: str) -> EmailMessage:
    """The e-mail for one outbox message. Raises ValueError for an unusable address."""
    if "@" not in m.recipient or "\n" in m.recipient or "\r" in m.recipient:
        raise ValueError("not an e-mail address")
    local, _, domain = m.recipient.rpartition("@")
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = Address(addr_spec=f"{local}@{domain}")
    msg["Subject"] = str(m.payload.get("title") or "isocheck")
    msg["Date"] = formatdate(localtime=False)
    digest = hashlib.sha256(m.idempotency_key.encode()).hexdigest()[:32]
    msg["Message-ID"] = f"<{digest}@isocheck>"
    msg["X-Isocheck-Idempotency-Key"] = m.idempotency_key
    msg.set_content(str(m.payload.get("text") or m.payload.get("body") or ""))
    return msg


def _text(value: bytes | str) -> str:
    return (value.decode(errors="replace") if isinstance(value, bytes) else value)[:300]
