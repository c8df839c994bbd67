"""The API's routes. Every path takes a trailing slash or none, as Mastodon's do."""

from __future__ import annotations

from django.urls import re_path

from . import views

ID = r"(?P<id>[^/]+)"


def route(path: str, view: object) -> object:
    return re_path(rf"^{path}/?$", view)


urlpatterns = [
    route("api/v1/instance", views.instance_v1),
    route("api/v2/instance", views.instance_v2),
    route("api/v1/apps", views.apps),
    route("oauth/token", views.oauth_token),
    route("oauth/revoke", views.oauth_revoke),
    route("api/v1/accounts", views.sign_up),
    route("api/v1/accounts/verify_credentials", views.verify_credentials),
    route("api/v1/accounts/relationships", views.relationships),
    route("api/v1/accounts/familiar_followers", views.familiar_followers),
    route(f"api/v1/accounts/{ID}", views.account),
    route(f"api/v1/accounts/{ID}/statuses", views.account_statuses),
    route(f"api/v1/accounts/{ID}/followers", views.followers),
    route(f"api/v1/accounts/{ID}/following", views.following),
    route(f"api/v1/accounts/{ID}/follow", views.follow),
    route(f"api/v1/accounts/{ID}/unfollow", views.unfollow),
    route(f"api/v1/accounts/{ID}/mute", views.mute),
    route(f"api/v1/accounts/{ID}/unmute", views.unmute),
    route("api/v1/timelines/home", views.home),
    route("api/v1/statuses", views.statuses),
    route(f"api/v1/statuses/{ID}", views.status),
    route(f"api/v1/statuses/{ID}/favourite", views.favourite),
    route(f"api/v1/statuses/{ID}/unfavourite", views.unfavourite),
    route(f"api/v1/statuses/{ID}/favourited_by", views.favourited_by),
    route("api/v1/trends/statuses", views.trends),
    route("api/v1/trends", views.trends),
    route("api/v2/suggestions", views.suggestions),
    route("api/v2/notifications", views.notifications),
]

handler400 = views.bad_request_page
handler404 = views.not_found_page
handler500 = views.server_error_page
