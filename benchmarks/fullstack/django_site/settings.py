"""Django settings for the full-stack benchmark: ``startproject``'s defaults, production mode.

MIDDLEWARE, INSTALLED_APPS (less the admin, which no endpoint uses) and the
session, CSRF and password settings are Django's defaults. Changed: DEBUG off,
the database (from ``FULLSTACK_DATABASE_URL``), and a Jinja2 engine beside the
Django one, for the template the four sites share. On PostgreSQL the
connections come from psycopg's pool (Django 5.1+), which Django's docs
recommend under ASGI instead of persistent connections; on SQLite the options
match covet's SQLite defaults (WAL, synchronous=NORMAL, BEGIN IMMEDIATE).
"""

from __future__ import annotations

from benchmarks.fullstack import common

SECRET_KEY = common.secret_key()
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "benchmarks.fullstack.django_site.urls"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "benchmarks.fullstack.django_site",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [str(common.TEMPLATES)],
        "OPTIONS": {"autoescape": True, "auto_reload": False},
    },
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    },
]
_URL = common.database_url()
if _URL.startswith("postgres"):
    _DSN, _SCHEMA = common.postgres_parts(_URL)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _DSN.rsplit("/", 1)[1],
            "USER": "postgres",
            "HOST": "127.0.0.1",
            "PORT": "5432",
            "OPTIONS": {
                "options": f"-c search_path={_SCHEMA}",
                "pool": {"min_size": 2, "max_size": 10},
            },
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": common.sqlite_path(_URL),
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"
