"""The plan: pure functions from (desired, actual, mapping, policy) to actions, and the safety gate that
judges them. No I/O: nothing here imports an HTTP client, the Okta SDK, a database or a scheduler."""
