"""HTTP API for API tokens (the settings page does the same with plain forms).

``GET /api/v1/tokens`` lists names and creation times; ``POST`` with
``{"name": "laptop"}`` makes one and returns it, the only time it is shown;
``DELETE /api/v1/tokens/NAME`` revokes.
"""

from __future__ import annotations

import logging

from tornado.web import HTTPError

from appliance.auth import TokenStore
from appliance.errors import AuthError
from appliance.web.base import ApiHandler

log = logging.getLogger(__name__)


class _TokensBase(ApiHandler):
    @property
    def tokens(self) -> TokenStore:
        store: TokenStore = self.settings["tokens"]
        return store


class TokenListApi(_TokensBase):
    """All tokens, and making a new one."""

    def get(self) -> None:
        """``[{"name","created"}]``; never the tokens themselves."""
        self.write_json(self.tokens.list())

    def post(self) -> None:
        """Make a token; the reply is the only place it ever appears."""
        name = self.json_body().get("name")
        if not isinstance(name, str):
            raise HTTPError(400, reason="the body needs a string field 'name'")
        try:
            token = self.tokens.create(name)
        except AuthError as exc:
            raise HTTPError(400, reason=str(exc)) from None
        log.info("API token %s created", name)
        self.broadcast({"type": "tokens_changed"})
        self.write_json({"name": name, "token": token}, status=201)


class TokenApi(_TokensBase):
    """One token."""

    def delete(self, name: str) -> None:
        """Revoke it."""
        try:
            self.tokens.revoke(name)
        except AuthError as exc:
            raise HTTPError(404, reason=str(exc)) from None
        log.info("API token %s revoked", name)
        self.broadcast({"type": "tokens_changed"})
        self.write_json({"revoked": name})
