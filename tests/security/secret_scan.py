"""Distinctive secrets and a scanner that finds them, whole or in part, in any text.
Shared by the security tests: every surface a user can see is passed through ``leaks``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

#: Secrets nobody would type by accident, so a hit is always a leak.
API_KEY = "sk_live_QZX7vK2mP9wR4tY8nB3cF6hJ1dL5sA0e"
WEBHOOK_SECRET = "whsec_Ux9Rt3Kq7Lm2Np6Vb8Zc4Yw1Ha5Jd0Gf"
REGISTRY_PASSWORD = "regpw-Mv3Xq8Tn1Kp6Wz9Rb4Lc7Hs2Jf5Dg0y"

#: A leak of this many consecutive characters of a secret counts (a masked key shows far less).
WINDOW = 10


def fragments(secret: str, window: int = WINDOW) -> set[str]:
    """Every ``window``-long slice of the secret (or the whole secret when it is shorter)."""
    if len(secret) <= window:
        return {secret}
    return {secret[i : i + window] for i in range(len(secret) - window + 1)}


def leaks(text: str, secrets: Mapping[str, str]) -> list[str]:
    """Names of the secrets that appear in ``text`` whole or by a WINDOW-long fragment."""
    found = []
    for name, secret in secrets.items():
        if secret and any(fragment in text for fragment in fragments(secret)):
            found.append(name)
    return found


def surfaces(obj: object) -> dict[str, str]:
    """What a user can see of an object: repr, str and the HTML a notebook would render."""
    seen = {"repr": repr(obj), "str": str(obj)}
    html = getattr(obj, "_repr_html_", None)
    if callable(html):
        seen["html"] = str(html() or "")
    bundle = getattr(obj, "_repr_mimebundle_", None)
    if callable(bundle):
        rendered = bundle()
        data = rendered[0] if isinstance(rendered, tuple) else rendered
        for mime, content in (data or {}).items():
            seen[f"mime:{mime}"] = str(content)
    return seen


def assert_no_leaks(
    what: str, texts: Mapping[str, str] | Iterable[str], secrets: Mapping[str, str]
) -> None:
    """Fail naming the surface and the secret, without printing the secret itself."""
    items = texts.items() if isinstance(texts, Mapping) else enumerate(texts)
    for surface, text in items:
        found = leaks(text, secrets)
        assert not found, f"{what}: {', '.join(found)} leaked through {surface}"
