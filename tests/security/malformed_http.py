"""Hypothesis strategies for malformed HTTP requests and a raw-socket sender to fire them.
Raw sockets, not requests: a fuzzer must be able to send what no well-behaved client would.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass

from hypothesis import strategies as st

API_PREFIX = "/gpu-instance/openapi/v1"

#: Paths the sandbox serves (Novita namespace), so the fuzzer reaches the validation code.
NOVITA_PATHS = (
    "/clusters",
    "/products",
    "/gpu/instances",
    "/gpu/instance",
    "/gpu/instance/create",
    "/gpu/instance/start",
    "/gpu/instance/stop",
    "/gpu/instance/restart",
    "/gpu/instance/delete",
    "/gpu/instance/edit",
    "/templates",
    "/template",
    "/template/create",
    "/template/update",
    "/template/delete",
    "/repository/auths",
    "/repository/auth/save",
    "/repository/auth/delete",
)

#: Field names the API knows, so generated JSON objects hit real fields with wrong types.
KNOWN_FIELDS = (
    "instanceId",
    "name",
    "productId",
    "gpuNum",
    "rootfsSize",
    "imageUrl",
    "imageAuth",
    "imageAuthId",
    "ports",
    "envs",
    "command",
    "entrypoint",
    "clusterId",
    "kind",
    "billingMode",
    "month",
    "expandRootDisk",
    "template",
    "templateId",
    "Id",
    "id",
    "username",
    "password",
    "pageSize",
    "pageNum",
    "networkStorages",
)

QUERY_KEYS = (
    "instanceId",
    "pageSize",
    "pageNum",
    "clusterId",
    "gpuNum",
    "productName",
    "billingMethod",
    "status",
    "name",
    "templateId",
    "minCpuPerGpu",
    "channel",
)

METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(KNOWN_FIELDS) | st.text(max_size=8), children, max_size=4),
    ),
    max_leaves=12,
)
#: JSON objects with the API's own field names holding values of any type.
wrong_typed_objects = st.dictionaries(st.sampled_from(KNOWN_FIELDS), json_values, max_size=8)


def _truncate(text: str, cut: int) -> str:
    return text[: max(0, min(len(text) - 1, cut))]


bodies = st.one_of(
    st.just(b""),
    wrong_typed_objects.map(lambda obj: json.dumps(obj).encode()),
    json_values.map(lambda value: json.dumps(value).encode()),
    # broken JSON: a valid document cut short
    st.tuples(wrong_typed_objects, st.integers(0, 200)).map(
        lambda pair: _truncate(json.dumps(pair[0]), pair[1]).encode()
    ),
    st.binary(max_size=200),
    st.text(max_size=100).map(lambda t: t.encode("utf-8", "surrogatepass")),
)

header_names = st.sampled_from(
    ("Content-Type", "Authorization", "Accept", "X-Request-Id", "Transfer-Encoding-Ish", "Cookie")
) | st.from_regex(r"\A[A-Za-z][A-Za-z0-9-]{0,20}\Z", fullmatch=True)
# Header values without CR/LF so each generated header stays one header.
header_values = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"),
    max_size=60,
)


POST_PATHS = frozenset(
    p
    for p in NOVITA_PATHS
    if p.rsplit("/", 1)[-1]
    in {"create", "start", "stop", "restart", "delete", "edit", "update", "save"}
)

query_values = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.from_regex(r"\A[A-Za-z0-9%._-]{0,20}\Z", fullmatch=True),
)


@st.composite
def paths(draw: st.DrawFn, valid_paths: tuple[str, ...] = NOVITA_PATHS) -> str:
    """A known path (sometimes mangled) with a query string of known keys and odd values."""
    choice = draw(st.integers(0, 9))
    if choice < 8:
        path = API_PREFIX + draw(st.sampled_from(valid_paths))
    elif choice < 9:
        path = API_PREFIX + "/" + draw(st.from_regex(r"\A[a-z/._%0-9-]{0,30}\Z", fullmatch=True))
    else:
        path = "/" + draw(st.from_regex(r"\A[A-Za-z0-9/._%~-]{0,40}\Z", fullmatch=True))
    params = draw(st.lists(st.tuples(st.sampled_from(QUERY_KEYS), query_values), max_size=4))
    if params:
        path += "?" + "&".join(f"{key}={value}" for key, value in params)
    return path


def natural_method(path: str) -> str:
    """The method the API expects on a path (POST for mutations, GET otherwise)."""
    base = path.split("?", 1)[0]
    return "POST" if base[len(API_PREFIX) :] in POST_PATHS else "GET"


@dataclass
class RawRequest:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes

    def encode(self) -> bytes:
        head = [f"{self.method} {self.path} HTTP/1.1", "Host: 127.0.0.1"]
        head += [f"{name}: {value}" for name, value in self.headers]
        # Content-Length always matches, so the server never waits for bytes that do not come.
        head += [f"Content-Length: {len(self.body)}", "Connection: close"]
        return ("\r\n".join(head) + "\r\n\r\n").encode("utf-8", "surrogateescape") + self.body


@st.composite
def raw_requests(
    draw: st.DrawFn, api_key: str, valid_paths: tuple[str, ...] = NOVITA_PATHS
) -> RawRequest:
    """A request with a random path, usually the method it expects (so validation is
    reached), random headers and body; usually authenticated."""
    path = draw(paths(valid_paths))
    if draw(st.integers(0, 3)) == 0:
        method = draw(st.sampled_from(METHODS))
    else:
        method = natural_method(path)
    headers: list[tuple[str, str]] = []
    auth = draw(st.sampled_from(("good",) * 7 + ("none", "bad", "garbage")))
    if auth == "good":
        headers.append(("Authorization", f"Bearer {api_key}"))
    elif auth == "bad":
        headers.append(("Authorization", "Bearer sk_wrong_key"))
    elif auth == "garbage":
        headers.append(("Authorization", draw(header_values)))
    if draw(st.booleans()):
        headers.append(
            (
                "Content-Type",
                draw(
                    st.sampled_from(
                        ("application/json", "text/plain", "application/json; charset=latin-1", "")
                    )
                ),
            )
        )
    headers += draw(st.lists(st.tuples(header_names, header_values), max_size=3))
    if method == "POST" and draw(st.integers(0, 2)) > 0:
        body = json.dumps(draw(wrong_typed_objects)).encode()
    else:
        body = draw(bodies)
    return RawRequest(method, path, headers, body)


def send_raw(host: str, port: int, request: RawRequest, timeout: float = 10.0) -> tuple[int, bytes]:
    """Send the bytes, read until the server closes; return (status, whole response).

    Status 0 means the server closed without an HTTP answer (a crash or a dropped connection).
    """
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(request.encode())
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    response = b"".join(chunks)
    status_line = response.split(b"\r\n", 1)[0].split()
    if len(status_line) >= 2 and status_line[0].startswith(b"HTTP/") and status_line[1].isdigit():
        return int(status_line[1]), response
    return 0, response
