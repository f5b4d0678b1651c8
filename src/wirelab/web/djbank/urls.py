"""The app's URLs: the book's (``/``, ``/pay/``, ``/accounts/login/``, ``/admin/``), logout by
POST at ``/logout/``, and the static files (the admin's and ours), served by Django itself
because the lab has no separate static server."""

from __future__ import annotations

from django.contrib import admin  # type: ignore[import-untyped]
from django.contrib.auth import views as auth_views  # type: ignore[import-untyped]
from django.contrib.staticfiles.views import serve  # type: ignore[import-untyped]
from django.urls import path, re_path  # type: ignore[import-untyped]

from wirelab.web.djbank import views

__all__ = ["urlpatterns"]

admin.site.site_header = "wirelab djbank administration"
admin.site.site_title = "djbank admin"

urlpatterns = [
    path("admin/", admin.site.urls),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(
            template_name="registration/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.index_view, name="index"),
    path("pay/", views.pay_view, name="pay"),
    # the finders only look in the apps' static/ directories (no path outside them)
    re_path(r"^static/(?P<path>.+)$", serve, {"insecure": True}),
]
