"""The payments app of chapter 11 on Django (F63): auth, a ModelForm, messages and the admin.

The book's ``djbank`` project rebuilt for current Django, small and hardened, in one package:

* :mod:`.settings` builds the settings **in code** for one data directory and configures
  Django once per process (a gunicorn worker): nothing reads ``DJANGO_SETTINGS_MODULE``, so
  the app never clashes with anything else imported beside it;
* :mod:`.accounts` names the logins (the book's chapter 11 users, the payees, the lab
  superuser) and :mod:`.seed` puts them and the book's three payments in a new database;
* :mod:`.models`, :mod:`.forms`, :mod:`.views`, :mod:`.urls`, :mod:`.admin` are the app;
* :mod:`.wsgi` is what gunicorn loads (``application_for(DATA_DIR)``: configure, migrate,
  seed, serve); :mod:`.server` runs gunicorn behind the lab's buffering TLS front, for the
  lab service and ``wirelab web django serve``.

Only :mod:`.accounts`, :mod:`.config` and :mod:`.server` may be imported by a process that
is not the app's own (the lab, the CLI): they import no Django.
"""
