"""Django settings for the payments app, built in code for one data directory.

:func:`build` returns the settings as a dictionary and :func:`configure` hands them to
``django.conf.settings.configure`` once per process (a gunicorn worker), then runs
``django.setup()``. Nothing reads ``DJANGO_SETTINGS_MODULE``: the settings cannot leak into,
or be overridden by, anything else in the process. Each choice that differs from
``startproject``'s is explained beside it.
"""

from __future__ import annotations

from typing import Any

from wirelab.errors import ConfigError
from wirelab.web.djbank.config import AppConfig

__all__ = ["CONTENT_SECURITY_POLICY", "build", "configure"]

#: No script, style, frame or form target from anywhere but the app itself; never framed.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def build(config: AppConfig) -> dict[str, Any]:
    """The settings of the app for ``config``."""
    return {
        "DEBUG": False,  # never the debug page: it shows settings and code to anyone
        "SECRET_KEY": config.secret_key,
        "ALLOWED_HOSTS": list(config.allowed_hosts),
        "INSTALLED_APPS": [
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "django.contrib.staticfiles",
            "wirelab.web.djbank.apps.DjbankConfig",
        ],
        "MIDDLEWARE": [
            "django.middleware.security.SecurityMiddleware",
            "wirelab.web.djbank.views.ContentSecurityPolicyMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
        ],
        "ROOT_URLCONF": "wirelab.web.djbank.urls",
        "TEMPLATES": [
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "DIRS": [],
                "APP_DIRS": True,  # autoescaping is on, as always in Django templates
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        "DATABASES": {
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(config.database),
                # writers queue instead of failing at once; BEGIN IMMEDIATE avoids the
                # "database is locked" upgrade deadlock between two gthread workers
                "OPTIONS": {"timeout": 5, "transaction_mode": "IMMEDIATE"},
            }
        },
        "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField",
        # scrypt (memory-hard, in the standard library): a login costs ~50 ms, where
        # Django's default PBKDF2 (1,000,000 rounds) costs most of a second of this CPU
        "PASSWORD_HASHERS": [
            "django.contrib.auth.hashers.ScryptPasswordHasher",
            "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        ],
        "AUTH_PASSWORD_VALIDATORS": [],  # the book's passwords are short; users never set one
        "LOGIN_URL": "/accounts/login/",
        "LOGIN_REDIRECT_URL": "/",
        "LOGOUT_REDIRECT_URL": "/accounts/login/",
        # messages live in the session (server side), shown once, never in a cookie or a URL
        "MESSAGE_STORAGE": "django.contrib.messages.storage.session.SessionStorage",
        # -- cookies: only over HTTPS, never to JavaScript, and not sent by other sites.
        # The __Host- prefix makes a browser refuse them unless Secure, Path=/ and no Domain,
        # so no sibling host of example.com can set or shadow them.
        "SESSION_COOKIE_NAME": "__Host-djbank-session",
        "SESSION_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_AGE": 8 * 3600,
        "CSRF_COOKIE_NAME": "__Host-djbank-csrftoken",
        "CSRF_COOKIE_SECURE": True,
        "CSRF_COOKIE_HTTPONLY": True,  # our forms carry the token; no script needs it
        "CSRF_COOKIE_SAMESITE": "Strict",
        # -- HTTPS: the lab's front terminates TLS and sets X-Forwarded-Proto (dropping any
        # the client sent); gunicorn believes it only from 127.0.0.1 and sets wsgi.url_scheme.
        # No HSTS: it would pin www.example.com to HTTPS on every port, and the insecure
        # Flask app of the same chapter is plain HTTP on that host name.
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "SECURE_REFERRER_POLICY": "same-origin",
        "SECURE_CROSS_ORIGIN_OPENER_POLICY": "same-origin",
        "X_FRAME_OPTIONS": "DENY",
        # -- bounds on what a request may make Django hold
        "DATA_UPLOAD_MAX_MEMORY_SIZE": 64 * 1024,
        "DATA_UPLOAD_MAX_NUMBER_FIELDS": 100,
        "DATA_UPLOAD_MAX_NUMBER_FILES": 0,
        "FILE_UPLOAD_MAX_MEMORY_SIZE": 64 * 1024,
        "STATIC_URL": "/static/",
        "USE_TZ": True,
        "TIME_ZONE": "UTC",
        "LANGUAGE_CODE": "en-us",
        "LOGGING_CONFIG": None,  # the worker's logging is gunicorn's; Django adds no handler
    }


def configure(config: AppConfig) -> None:
    """Configure Django for ``config`` and set it up, once per process.

    Raises:
        ConfigError: Django is already configured in this process for another directory.
    """
    from django.conf import settings  # type: ignore[import-untyped]

    if settings.configured:
        current = settings.DATABASES["default"]["NAME"]
        if current != str(config.database):
            raise ConfigError(
                f"Django is already configured in this process (for {current}); "
                "one djbank per process"
            )
        return
    settings.configure(**build(config))
    import django  # type: ignore[import-untyped]

    django.setup()
