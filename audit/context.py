"""Who is asking, for the events recorded while a request (or a command, or a WebSocket
message) is handled: request id, client address and acting agency, in a contextvar."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class RequestContext:
    request_id: str = ""
    ip: str | None = None
    agency_id: int | None = None


# The default is shared, which is safe: RequestContext is frozen.
_current: ContextVar[RequestContext] = ContextVar("audit_request", default=RequestContext())  # noqa: B039


def current() -> RequestContext:
    return _current.get()


@contextmanager
def bind(
    *, request_id: str = "", ip: str | None = None, agency_id: int | None = None
) -> Iterator[RequestContext]:
    """Record the events inside the block with this context (middleware, consumers, commands)."""
    context = RequestContext(request_id=request_id, ip=ip, agency_id=agency_id)
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def set_agency(agency_id: int | None) -> None:
    """Name the agency the user acts for in this request, once the platform knows it."""
    _current.set(replace(_current.get(), agency_id=agency_id))
