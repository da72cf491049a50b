"""Wiring: settings, root URLs, ASGI, the server and the main navigation. It joins the
apps together and stands on top of them; nothing imports it."""
