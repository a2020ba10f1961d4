from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "webapp.accounts"
    label = "accounts"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_login_failed

        from webapp.accounts import ratelimit

        user_login_failed.connect(ratelimit.on_login_failed, dispatch_uid="spell-login-rate-limit")
