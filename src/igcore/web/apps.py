from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "igcore.web"
    label = "igcore_web"
    default_auto_field = "django.db.models.BigAutoField"
