"""The payments app of chapter 11 on Django (F63): auth, a ModelForm, messages and the admin.

The book's ``djbank`` project rebuilt for current Django, small and hardened, in one package:

* :mod:`.settings` builds the settings **in code** for one data directory and configures
  Django once per process (a gunicorn worker): nothing reads ``DJANGO_SETTINGS_MODULE``, so
  the app never clashes with anything else imported beside it;
* :mod:`.accounts` names the logins (the book's chapter 11 users, the payees, the lab
  superuser) and :mod:`.seed` puts them and the book's three payments in a new database;
  :mod:`.database` makes a new database fast (a cached template), :mod:`.config` keeps the
  data directory (secret key, superuser password);
* :mod:`.models`, :mod:`.forms`, :mod:`.views`, :mod:`.urls`, :mod:`.admin` are the app;
* :mod:`.wsgi` is what gunicorn loads (``application_from_environment()``: configure,
  migrate, seed, serve); :mod:`.service` is the lab service (gunicorn behind the lab's
  buffering TLS front), also run on its own by ``wirelab web django serve``;
* :mod:`.client` is a client of the app on requests (the tour and the CLI use it).

Only :mod:`.accounts`, :mod:`.config`, :mod:`.service` and :mod:`.client` may be imported
by a process that is not the app's own (the lab, the CLI, the tests): they import no Django.
"""
