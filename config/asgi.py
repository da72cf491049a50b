"""ASGI entry point for Daphne: HTTP, and the WebSocket at /ws/ (the site's own origin only,
a session verified by the second factor)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

# The embedded default serves its static files itself; production leaves them to nginx.
http_app = ASGIStaticFilesHandler(django_asgi_app) if settings.SERVE_STATIC else django_asgi_app

from messaging.middleware import OTPWebSocketMiddleware, SameOriginValidator  # noqa: E402
from messaging.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": http_app,
        "websocket": SameOriginValidator(
            AuthMiddlewareStack(OTPWebSocketMiddleware(URLRouter(websocket_urlpatterns)))
        ),
    }
)
