"""`oms returns list --status` takes only a status a return can have: a typo is refused by the command, with the
statuses listed, rather than sent to the service to come back as a 422."""

from __future__ import annotations

import pytest

from deploy.cli.main import parser


def test_a_known_status_is_taken() -> None:
    args = parser().parse_args(["returns", "list", "--status", "review"])
    assert args.status == "review"


def test_an_unknown_status_is_refused_with_the_statuses_listed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        parser().parse_args(["returns", "list", "--status", "reveiw"])
    assert refused.value.code == 2
    shown = capsys.readouterr().err
    assert "invalid choice: 'reveiw'" in shown
    assert all(status in shown for status in ("authorised", "review", "partially_received", "closed"))
