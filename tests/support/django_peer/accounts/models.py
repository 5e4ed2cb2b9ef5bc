"""What a security-awareness platform keeps of a user, on django-scim2's abstract SCIM mixins."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.utils.timezone import now
from django_scim.models import AbstractSCIMGroupMixin, AbstractSCIMUserMixin


class Group(AbstractSCIMGroupMixin):
    """django-scim2's default GROUP_MODEL (auth.Group) has no scim_id: a deployment brings its own."""

    name = models.CharField(max_length=150, unique=True)

    def __str__(self) -> str:
        return self.name


class User(AbstractSCIMUserMixin, AbstractBaseUser):
    """The default SCIMUser adapter reads username, first_name, last_name, email, is_active and date_joined."""

    username = models.CharField(max_length=150, unique=True)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    display_name = models.CharField(max_length=254, blank=True)
    nick_name = models.CharField(max_length=150, blank=True)
    title = models.CharField(max_length=254, blank=True)
    email = models.EmailField(max_length=254, blank=True)
    phone_number = models.CharField(max_length=64, blank=True)
    locale = models.CharField(max_length=35, blank=True)
    preferred_language = models.CharField(max_length=35, blank=True)
    timezone = models.CharField(max_length=64, blank=True)
    user_type = models.CharField(max_length=64, blank=True)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=now)

    employee_number = models.CharField(max_length=64, blank=True)
    cost_center = models.CharField(max_length=128, blank=True)
    organization = models.CharField(max_length=254, blank=True)
    division = models.CharField(max_length=254, blank=True)
    department = models.CharField(max_length=254, blank=True)
    manager_id = models.CharField(max_length=254, blank=True)

    # SCIMUser.groups reads user.scim_groups, SCIMGroup.members reads group.user_set.
    scim_groups = models.ManyToManyField(Group, related_name="user_set", blank=True)

    objects = BaseUserManager()

    USERNAME_FIELD = "username"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    def __str__(self) -> str:
        return self.username
