"""django-scim2 mounted at /scim/v2/, as its README does."""

from django.urls import include, path

urlpatterns = [
    path("scim/v2/", include("django_scim.urls", namespace="scim")),
]
