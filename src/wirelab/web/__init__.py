"""Chapter 11: the World Wide Web: a payments app that teaches XSS and CSRF, and scrapers."""
