"""Sign-in for the deployed dashboard: the page signs its user in to the deployment's Cognito
user pool and sends the access token with every API request; API Gateway's JWT authorizer
checks it before the API function runs.

The page itself (its HTML, scripts and styles) holds no data and is served to anyone; every
`/api/` path needs a token. The page talks to Cognito's own API (`InitiateAuth` with the
password over TLS, then the challenges: a new password, setting up or answering a one-time
code), so the stack needs no sign-in domain and no redirect address that depends on the API's.
The pool's id and the client's id are not secrets: the page carries them in a `<meta>` tag.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from orderpipe.errors import ConfigError

__all__ = ["SignIn"]

POOL_VARIABLE = "SIGN_IN_USER_POOL_ID"
CLIENT_VARIABLE = "SIGN_IN_CLIENT_ID"
ENDPOINT_VARIABLE = "SIGN_IN_ENDPOINT"  # another Cognito endpoint (an emulator): tests only


@dataclass(frozen=True, slots=True)
class SignIn:
    user_pool_id: str
    client_id: str
    endpoint: str

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> SignIn | None:
        """The stack's variables on the API function; None when neither is set (IAM)."""
        pool, client = environ.get(POOL_VARIABLE, ""), environ.get(CLIENT_VARIABLE, "")
        if not pool and not client:
            return None
        if not pool or not client or "_" not in pool:
            raise ConfigError(
                f"sign-in needs both {POOL_VARIABLE} (<region>_<id>) and {CLIENT_VARIABLE}; "
                f"got {pool or '(none)'!r} and {client or '(none)'!r}: deploy the stack again to set them"
            )
        region = pool.split("_", 1)[0]
        endpoint = environ.get(ENDPOINT_VARIABLE) or f"https://cognito-idp.{region}.amazonaws.com/"
        return cls(pool, client, endpoint)

    @property
    def origin(self) -> str:
        """What the page's Content-Security-Policy must let it connect to besides itself."""
        parts = urlsplit(self.endpoint)
        return f"{parts.scheme}://{parts.netloc}"

    def page(self, index_html: str) -> str:
        """The dashboard's page with this deployment's sign-in settings in it."""
        settings = json.dumps({"endpoint": self.endpoint, "userPoolId": self.user_pool_id, "clientId": self.client_id})
        tag = f'<meta name="orderpipe-sign-in" content="{html.escape(settings, quote=True)}">\n'
        return index_html.replace("</head>", tag + "</head>", 1)
