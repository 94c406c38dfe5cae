"""How the guard's own HTTP backend reads a failed metrics answer: status and reason together,
as the transport does, so a documented 500 ``WALLET_NOT_FOUND`` is never "the instance is gone".
The sandbox serves that answer only on delete, so these build the answer by hand."""

from __future__ import annotations

import json

import pytest
import requests

from novita_notebook.errors import APIError, AuthenticationError, NotFoundError, ServerError
from novita_notebook.guard.backend import METRICS_PATH, _metrics_error


def _answer(status: int, reason: str | None, message: str = "m") -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps({"code": status, "reason": reason, "message": message}).encode()
    response.headers["Content-Type"] = "application/json"
    return response


CALL = {"method": "GET", "path": METRICS_PATH}


@pytest.mark.parametrize(
    ("status", "reason", "kind"),
    [
        (404, None, NotFoundError),
        (400, "INSTANCE_NOT_FOUND", NotFoundError),
        (401, None, AuthenticationError),
        (400, "INVALID_USER_TOKEN", AuthenticationError),
        (503, None, ServerError),
    ],
)
def test_a_metrics_answer_reads_as_the_transport_reads_it(status, reason, kind):
    error = _metrics_error(_answer(status, reason), CALL)
    assert isinstance(error, kind)
    assert error.status == status and error.path == METRICS_PATH


def test_a_server_side_not_found_is_not_an_instance_gone():
    error = _metrics_error(_answer(500, "WALLET_NOT_FOUND"), CALL)
    assert isinstance(error, APIError) and not isinstance(error, NotFoundError)
    assert error.reason == "WALLET_NOT_FOUND"


def test_an_answer_that_is_not_json_still_names_its_status():
    response = requests.Response()
    response.status_code = 502
    response._content = b"<html>bad gateway</html>"
    error = _metrics_error(response, CALL)
    assert isinstance(error, ServerError) and error.status == 502
