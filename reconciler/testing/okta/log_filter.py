"""The System Log's ``filter``, as far as a follower uses it: ``eventType eq "x"`` and ``eventType sw "x"``,
joined with ``or``, in parentheses or not. Okta takes the whole SCIM filter syntax; the emulator refuses what
it does not implement with Okta's invalid-filter answer (400 ``E0000031``), and ``published`` (which Okta
refuses in a filter: ``since`` and ``until`` bound the time) likewise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from reconciler.testing.okta.errors import OktaHTTPError, okta_error

EventTypeMatch = Callable[[str | None], bool]
_TOKEN = re.compile(r'\s*(?:(?P<open>\()|(?P<close>\))|(?P<string>"(?:[^"\\]|\\.)*")|(?P<word>[A-Za-z_.]+))')
SUPPORTED = 'eventType eq "type" or eventType sw "prefix" (joined with or, parentheses allowed)'


def parse_filter(text: str) -> EventTypeMatch:
    """A predicate on an event's ``eventType``; 400 E0000031 for a filter outside what the emulator knows."""
    tokens = _tokens(text)
    if any(kind == "word" and value.lower() == "published" for kind, value in tokens):
        raise _invalid(text, "published cannot be used in a filter; bound the time with since and until")
    parser = _Parser(text, tokens)
    terms = parser.expression()
    if parser.position != len(tokens):
        raise _invalid(text, f"unexpected {tokens[parser.position][1]!r}")
    return lambda event_type: event_type is not None and any(term(event_type) for term in terms)


class _Parser:
    def __init__(self, text: str, tokens: list[tuple[str, str]]) -> None:
        self.text, self.tokens, self.position = text, tokens, 0

    def expression(self) -> list[Callable[[str], bool]]:
        terms = self.term()
        while self._peek() == ("word", "or"):
            self.position += 1
            terms += self.term()
        return terms

    def term(self) -> list[Callable[[str], bool]]:
        if self._peek() == ("open", "("):
            self.position += 1
            terms = self.expression()
            if self._take("close") is None:
                raise _invalid(self.text, "a parenthesis is not closed")
            return terms
        attribute, operator, value = self._take("word"), self._take("word"), self._take("string")
        if attribute != "eventType" or operator is None or operator.lower() not in {"eq", "sw"} or value is None:
            raise _invalid(self.text, f"the emulator supports only {SUPPORTED}")
        wanted = json.loads(value)
        if operator.lower() == "eq":
            return [lambda event_type: event_type == wanted]
        return [lambda event_type: event_type.startswith(wanted)]

    def _peek(self) -> tuple[str, str] | None:
        if self.position >= len(self.tokens):
            return None
        kind, value = self.tokens[self.position]
        return kind, value.lower() if kind == "word" else value

    def _take(self, kind: str) -> str | None:
        if self.position < len(self.tokens) and self.tokens[self.position][0] == kind:
            self.position += 1
            return self.tokens[self.position - 1][1]
        return None


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text.rstrip()):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise _invalid(text, f"cannot read the filter from {text[position:]!r}")
        kind = match.lastgroup or "word"
        tokens.append((kind, match.group(kind)))
        position = match.end()
    if not tokens:
        raise _invalid(text, "the filter is empty")
    return tokens


def _invalid(text: str, cause: str) -> OktaHTTPError:
    return OktaHTTPError(400, okta_error("E0000031", "Invalid search criteria.", [f"filter: {cause} ({text!r})"]))
