"""The mapping of API answers to the error tree, for envelopes the sandbox rarely or never
sends (403, 400 *_NOT_FOUND, HTML gateways pages); built from real requests.Response objects.
"""

from __future__ import annotations

import json

import pytest
import requests

from novita_notebook import errors
from novita_notebook.http import error_from_response


def response(status: int, body: object, headers: dict[str, str] | None = None) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer._content = (body if isinstance(body, str) else json.dumps(body)).encode()
    answer.headers.update(headers or {})
    answer.reason = "Reason"
    return answer


def envelope(status: int, reason: str, message: str) -> dict:
    return {"code": status, "reason": reason, "message": message, "metadata": {}}


@pytest.mark.parametrize(
    "status,reason,message,expected",
    [
        (401, "UNAUTHORIZED", "bad key", errors.AuthenticationError),
        (403, "FORBIDDEN", "not allowed", errors.AuthenticationError),
        (429, "RATE_LIMIT_EXCEEDED", "slow down", errors.RateLimitError),
        (404, "RESOURCE_NOT_FOUND", "gone", errors.NotFoundError),
        (400, "TEMPLATE_NOT_FOUND", "no template", errors.NotFoundError),
        (400, "VALIDATOR_PARAM", "gpuNum: must be 1-8", errors.ValidationError),
        (400, "INSUFFICIENT_RESOURCE", "sold out", errors.CapacityError),
        (400, "REQUEST", "invalid state change: running -> toStart", errors.InvalidStateError),
        (400, "DEPENDENT_RESOURCE_STATE", "busy", errors.InvalidStateError),
        (400, "BALANCE_NOT_ENOUGH", "top up", errors.APIError),
        (500, "UNKNOWN", "boom", errors.ServerError),
        # The status and the reason read together: a 500 is never a not-found, and the
        # documented 400 for a refused key is a key failure.
        (500, "WALLET_NOT_FOUND", "wallet not found", errors.APIError),
        (400, "INVALID_USER_TOKEN", "invalid user token", errors.AuthenticationError),
        (400, "BANNED_USER", "banned", errors.AuthenticationError),
        (400, "USER_NOT_FOUND", "no such user", errors.AuthenticationError),
        (503, "RESOURCE_NOT_FOUND", "upstream lost", errors.ServerError),
    ],
)
def test_reasons_map_to_the_tree(status, reason, message, expected):
    error = error_from_response(
        response(status, envelope(status, reason, message)), "POST", "/v1/gpu/instance/start"
    )
    assert type(error) is expected
    assert error.status == status and error.reason == reason and error.message == message
    assert error.call == "POST /v1/gpu/instance/start"
    assert error.hint  # every mapped error says what to do next


def test_validation_field_from_message_or_metadata():
    error = error_from_response(
        response(400, envelope(400, "VALIDATOR_PARAM", "gpuNum: must be 1-8")), "POST", "/x"
    )
    assert error.field == "gpuNum"
    body = {"code": 400, "reason": "VALIDATOR_PARAM", "message": "bad", "metadata": {"field": "f"}}
    assert error_from_response(response(400, body), "POST", "/x").field == "f"


def test_retry_after_header_is_kept():
    error = error_from_response(
        response(429, envelope(429, "RATE_LIMIT_EXCEEDED", "x"), {"Retry-After": "12"}), "GET", "/x"
    )
    assert error.retry_after == 12.0


def test_html_gateway_page_is_an_api_error_with_a_snippet():
    error = error_from_response(response(502, "<html>" + "x" * 500 + "</html>"), "GET", "/x")
    assert type(error) is errors.ServerError and isinstance(error, errors.APIError)
    assert error.status == 502
    assert len(error.message) <= 200 and error.hint


def test_secrets_are_scrubbed_from_messages():
    error = error_from_response(
        response(400, envelope(400, "VALIDATOR_PARAM", "imageAuth: bob:hunter2 is wrong")),
        "POST",
        "/x",
        scrub=lambda text: text.replace("hunter2", "***"),
    )
    assert "hunter2" not in str(error)


def test_one_answer_to_is_this_worth_retrying():
    """Transient failures share one parent; a wait that ran out is a TimeoutError but is not
    worth repeating, while a request timeout is both."""
    request_timeout = errors.RequestTimeoutError("no answer", method="GET", path="/x")
    wait_timeout = errors.TimeoutError("still pulling", last_status="pulling")
    assert isinstance(request_timeout, errors.TimeoutError)
    assert errors.is_transient(request_timeout) and not errors.is_transient(wait_timeout)
    for error in (
        errors.RateLimitError("slow", retry_after=2.0),
        errors.NetworkError("reset"),
        errors.CircuitBreakerError("open", retry_at=0.0),
        errors.ServerError("boom", status=503),
    ):
        assert errors.is_transient(error) and isinstance(error, errors.TransientError)
    for error in (errors.ValidationError("bad", field="x"), errors.CapacityError("sold out")):
        assert not errors.is_transient(error)
    assert errors.requested_delay(errors.RateLimitError("slow", retry_after=2.0)) == 2.0
    assert errors.requested_delay(errors.CircuitBreakerError("o", retry_at=110.0), now=100.0) == 10
    assert not errors.may_have_applied(errors.RateLimitError("slow"))
    assert errors.may_have_applied(request_timeout)


def test_a_500_wallet_not_found_is_a_refusal_never_retried_nor_not_found():
    error = error_from_response(
        response(500, envelope(500, "WALLET_NOT_FOUND", "wallet not found")), "POST", "/x"
    )
    assert not isinstance(error, errors.NotFoundError)
    assert not errors.is_transient(error)
    assert "nothing was changed" in error.hint
    assert not errors.means_not_found(500, "WALLET_NOT_FOUND")
    assert errors.means_not_found(400, "RESOURCE_NOT_FOUND") and errors.means_not_found(404, None)


def test_key_reasons_at_any_client_status_but_not_elsewhere():
    assert errors.key_rejected(401, None) and errors.key_rejected(400, "INVALID_USER_TOKEN")
    assert not errors.key_rejected(400, "TEMPLATE_NOT_FOUND")
    assert not errors.key_rejected(500, "INVALID_USER_TOKEN")
