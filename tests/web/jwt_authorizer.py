"""API Gateway's JWT authorizer as the stack configures it for a user pool, in front of the app:
moto serves Cognito's API and the pool's keys but has no API Gateway authorizer in action.

Paths `/` and `/static/...` pass (the stack gives their routes no authorizer); every other path
needs `Authorization: Bearer <token>` signed by one of the pool's keys (its JWKS, read from
moto's server), issued by the pool (`iss`), for the app client (`client_id` or `aud`) and not
expired; anything else gets API Gateway's `401 {"message":"Unauthorized"}`.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from orderpipe.web.security import ASGIApp, Receive, Scope, Send

OPEN = ("/", "/static/")


class JwtAuthorizer:
    def __init__(self, app: ASGIApp, endpoint: str, user_pool_id: str, client_id: str) -> None:
        self.app = app
        self.issuer = f"https://cognito-idp.{user_pool_id.split('_', 1)[0]}.amazonaws.com/{user_pool_id}"
        self.client_id = client_id
        jwks = httpx.get(f"{endpoint.rstrip('/')}/{user_pool_id}/.well-known/jwks.json").json()
        self.keys = KeySet.import_key_set(jwks)
        self.refused: list[str] = []  # the paths answered 401
        self.refuse_next = 0  # refuse so many requests more, tokens or not (a token revoked, say)

    def allows(self, authorization: str) -> bool:
        if not authorization.startswith("Bearer "):
            return False
        try:
            claims = jwt.decode(authorization[7:], self.keys, algorithms=["RS256"]).claims
        except (JoseError, ValueError):
            return False
        audience = claims.get("client_id", claims.get("aud"))
        return claims.get("iss") == self.issuer and audience == self.client_id and claims.get("exp", 0) > time.time()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path != OPEN[0] and not path.startswith(OPEN[1]):
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            if self.refuse_next > 0 or not self.allows(headers.get("authorization", "")):
                self.refuse_next = max(0, self.refuse_next - 1)
                self.refused.append(path)
                body = json.dumps({"message": "Unauthorized"}).encode()
                start: dict[str, Any] = {"type": "http.response.start", "status": 401}
                start["headers"] = [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]
                await send(start)
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
