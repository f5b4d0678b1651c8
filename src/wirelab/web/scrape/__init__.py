"""Chapter 11's scrapers and crawlers (F64-F68).

* :mod:`~wirelab.web.scrape.login`: the login-aware scraper (requests, or a real browser);
* :mod:`~wirelab.web.scrape.extract`: rows out of HTML with BeautifulSoup or lxml + cssselect;
* :mod:`~wirelab.web.scrape.crawl`: the polite same-host crawler of static links;
* :mod:`~wirelab.web.scrape.jscrawl`: the JavaScript-aware crawler on headless Chromium;
* :mod:`~wirelab.web.scrape.fetch` and :mod:`~wirelab.web.scrape.urls`: the bounded fetch and
  canonical URLs they share.
"""
