"""The WebSocket route: one socket per browser tab."""

from django.urls import path

from messaging.consumers import StaffConsumer

websocket_urlpatterns = [path("ws/", StaffConsumer.as_asgi())]
