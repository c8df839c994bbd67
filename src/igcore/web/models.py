"""The source of truth: accounts, statuses, follows, favourites, mutes, notifications, apps and tokens.

Everything in Redis and in the mapped follow graph can be rebuilt from these tables (``igcore serve
--reconcile`` recounts the counters; the graph file is rebuilt from ``Follow``). Ids of statuses, follows,
favourites and notifications are snowflakes (``igcore.web.ids``): time-ordered, so ``max_id`` paging is
an index range scan, as in Mastodon.
"""

from __future__ import annotations

from django.db import models


class Account(models.Model):
    id = models.BigIntegerField(primary_key=True)
    username = models.CharField(max_length=30, unique=True)
    email = models.CharField(max_length=254, unique=True, null=True)
    password = models.CharField(max_length=128)  # Django's password hash, never the password
    display_name = models.CharField(max_length=30, blank=True, default="")
    note = models.TextField(blank=True, default="")
    created_at = models.DateTimeField()
    # Kept in the row, updated with F() in the same transaction as the status: a profile does not count
    # its statuses on every read.
    statuses_count = models.IntegerField(default=0)
    last_status_at = models.DateTimeField(null=True)

    class Meta:
        db_table = "igcore_account"


class Status(models.Model):
    id = models.BigIntegerField(primary_key=True)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="statuses", db_index=False)
    text = models.TextField()
    spoiler_text = models.CharField(max_length=500, blank=True, default="")
    sensitive = models.BooleanField(default=False)
    visibility = models.CharField(max_length=10, default="public")
    language = models.CharField(max_length=8, null=True)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "igcore_status"
        indexes = [models.Index(fields=["account", "-id"], name="status_by_account")]


class Follow(models.Model):
    # The follow's snowflake is also its time in the follow graph, so that the graph lists followers
    # newest first and pages them by this id, as Mastodon's Link headers do.
    id = models.BigIntegerField(primary_key=True)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    target_account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        db_table = "igcore_follow"
        constraints = [models.UniqueConstraint(fields=["account", "target_account"], name="follow_once")]


class Favourite(models.Model):
    id = models.BigIntegerField(primary_key=True)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    status = models.ForeignKey(Status, on_delete=models.CASCADE, related_name="+", db_index=False)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "igcore_favourite"
        # The row decides whether a favourite counts: one per (account, status).
        constraints = [models.UniqueConstraint(fields=["account", "status"], name="favourite_once")]
        indexes = [models.Index(fields=["status", "-id"], name="favourite_by_status")]


class Mute(models.Model):
    id = models.BigIntegerField(primary_key=True)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    target_account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        db_table = "igcore_mute"
        constraints = [models.UniqueConstraint(fields=["account", "target_account"], name="mute_once")]


class Notification(models.Model):
    FAVOURITE, FOLLOW = "favourite", "follow"

    id = models.BigIntegerField(primary_key=True)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    from_account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    type = models.CharField(max_length=16)
    status = models.ForeignKey(Status, on_delete=models.CASCADE, related_name="+", null=True, db_index=False)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "igcore_notification"
        indexes = [models.Index(fields=["account", "-id"], name="notification_by_account")]


class Application(models.Model):
    id = models.BigAutoField(primary_key=True)
    name = models.CharField(max_length=100)
    website = models.CharField(max_length=500, null=True)
    redirect_uri = models.TextField()
    scopes = models.CharField(max_length=200)
    client_id = models.CharField(max_length=64, unique=True)
    client_secret_digest = models.CharField(max_length=64)  # sha256 of the secret
    created_at = models.DateTimeField()

    class Meta:
        db_table = "igcore_application"


class Token(models.Model):
    id = models.BigAutoField(primary_key=True)
    digest = models.CharField(max_length=64, unique=True)  # sha256 of the bearer token, never the token
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", null=True)
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="+", null=True)
    scopes = models.CharField(max_length=200)
    created_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True)

    class Meta:
        db_table = "igcore_token"
