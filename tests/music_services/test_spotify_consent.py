"""The OAuth callback's answers, as a table: each failure has its message for API clients and
its reason for the connect page."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from rhime.spotify import consent


def request(accept: str) -> Request:
    return Request({"type": "http", "method": "GET", "headers": [(b"accept", accept.encode())]})


def test_every_failure_has_a_message_and_only_failures_do() -> None:
    assert set(consent.MESSAGES) == set(consent.Outcome) - {consent.Outcome.CONNECTED}


@pytest.mark.parametrize("reason", ["unknown_state", "state_mismatch"])
def test_the_state_errors_reasons_are_outcomes(reason: str) -> None:
    assert consent.Outcome(reason) in consent.MESSAGES


@pytest.mark.parametrize("outcome", sorted(consent.MESSAGES))
def test_a_failure_sends_browsers_to_the_connect_page_and_api_clients_a_400(
    outcome: consent.Outcome,
) -> None:
    browser = consent.respond(request("text/html"), outcome)
    assert browser.status_code == 302
    assert browser.headers["location"] == f"/connect?error={outcome.value}"
    api = consent.respond(request("application/json"), outcome)
    assert api.status_code == 400
    assert consent.MESSAGES[outcome].encode() in api.body


def test_a_connection_goes_home_and_tells_the_gateway() -> None:
    answer = consent.respond(request("application/json"), consent.Outcome.CONNECTED)
    assert answer.status_code == 302
    assert answer.headers["location"] == "/"
    assert answer.headers[consent.CONNECTED_HEADER] == "1"
