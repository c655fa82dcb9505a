from django.apps import AppConfig


def _auth_changed(sender, **kwargs) -> None:
    """Cache coherence, not business logic: the tokens each process keeps (studio.tokens)
    carry their user and roles, so a change to any of those, from a service, the admin or a
    shell, makes every process read them again."""
    from studio.tokens import auth_changed

    if kwargs.get("created"):
        return  # a new row cannot be kept anywhere yet
    if set(kwargs.get("update_fields") or ()) == {"last_login"}:
        return  # signing in changes nothing a token carries
    if kwargs.get("action", "post_").startswith("pre_"):
        return  # m2m_changed: only once the groups have changed
    auth_changed()


class StudioConfig(AppConfig):
    name = "studio"
    verbose_name = "Studio"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from studio.models import ApiToken

        user = get_user_model()
        for model in (user, Group, ApiToken):
            post_save.connect(_auth_changed, sender=model, dispatch_uid=f"auth-{model.__name__}")
            post_delete.connect(
                _auth_changed, sender=model, dispatch_uid=f"auth-del-{model.__name__}"
            )
        m2m_changed.connect(_auth_changed, sender=user.groups.through, dispatch_uid="auth-groups")
