"""The SMTP sink: aiosmtpd as a real server (offering SMTPUTF8) delivering into the stack's Maildir, where the
demo and the tests read what notifications sent. start, ready, stop and kill it."""

from __future__ import annotations

import asyncio
import mailbox
import smtplib
import sys

from deploy.local.settings import LocalStack
from deploy.local.supervisor import BEHIND_THE_ORDER_PATH, Supervised, fail, port_taken, say, wait_until


def process(local: LocalStack) -> Supervised:
    return Supervised("smtp", local.state / "smtp.pid", local.state / "smtp.log", "deploy.local.mailsink")


def pid(local: LocalStack) -> int | None:
    return process(local).pid()


def running(local: LocalStack) -> bool:
    return pid(local) is not None


def _answers(local: LocalStack) -> bool:
    try:
        with smtplib.SMTP(local.host, local.ports.smtp, timeout=2) as smtp:
            return smtp.noop()[0] == 250
    except (OSError, smtplib.SMTPException):
        return False


async def ready(local: LocalStack) -> bool:
    """The server answers NOOP."""
    return await asyncio.to_thread(_answers, local)


async def start(local: LocalStack) -> None:
    """Start the sink unless it runs, and wait until it answers."""
    started = pid(local)
    if started is None:
        if port_taken(local.host, local.ports.smtp):
            fail(f"port {local.ports.smtp} is taken by another process; set OMS_SMTP_PORT")
        mailbox.Maildir(local.maildir, create=True)
        # aiosmtpd keeping one copy per Message-ID in a Maildir, as mail systems do, and offering SMTPUTF8, so
        # mail to internationalised mailboxes (jörg@…) can be delivered (deploy/local/mailsink.py).
        listen = f"{local.host}:{local.ports.smtp}"
        cmd = [sys.executable, "-m", "deploy.local.mailsink", "--listen", listen, str(local.maildir)]
        started = process(local).spawn(cmd, local.state, niceness=BEHIND_THE_ORDER_PATH)
    # It answers once it has listed the Message-IDs its Maildir holds: a second for 650,000 messages, but a Maildir
    # filled by an earlier sink is read, and renamed, once first (two minutes for as many, from the disk).
    await wait_until(lambda: ready(local), "smtp sink", lambda: running(local), (process(local).log_file,), 300)
    say(f"smtp: ready on {local.host}:{local.ports.smtp} (pid {started}), maildir {local.maildir}")


def stop(local: LocalStack) -> int | None:
    return process(local).stop(10)


def kill(local: LocalStack) -> int | None:
    """SIGKILL, and wait until it is gone; the pid killed, if it ran."""
    return process(local).kill()
