"""What the mail tests' servers share: mailboxes named `refused-…` are refused, and at each MAIL it is noted what
the client had sent with it (an aiosmtpd handler's part, before the handler it is mixed into)."""

from typing import Any


class RefusingAndNoting:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pipelined: list[bool] = []  # whether its RCPT had arrived with it
        self.mail_ahead: list[int] = []  # how many more MAIL commands had arrived with it

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        arrived = bytes(server._reader._buffer)
        self.pipelined.append(b"RCPT TO:" in arrived)
        self.mail_ahead.append(arrived.count(b"MAIL FROM:"))
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if address.startswith("refused-"):
            return "550 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"
