"""The local SCIM server the demo and the tests start: scim2-server behind a bearer token."""

from __future__ import annotations

import httpx

from reconciler.testing.scim_server import run_scim2_server


def test_a_token_that_starts_with_a_dash_is_the_token_not_an_option() -> None:
    """The demo draws its token with secrets.token_urlsafe, whose alphabet has "-": one in 64 starts with it.

    Passed as two arguments, scim2-server's argparse read such a token as an unknown option and exited (2).
    """
    token = "-dash-first-token-4b8f2d6a0e1c9735"
    with run_scim2_server(token) as server:
        answered = httpx.get(f"{server.base_url}/Users", headers={"Authorization": f"Bearer {token}"})
        refused = httpx.get(f"{server.base_url}/Users", headers={"Authorization": "Bearer another-token"})
    assert answered.status_code == 200
    assert refused.status_code == 401
