"""The djbank client's page reader (a parser we own): properties over any text, and the
pages the app renders read back."""

from __future__ import annotations

import html

from hypothesis import given, settings
from hypothesis import strategies as st

from wirelab.web.djbank.client import Payment, Reply, read_page

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=2000))
def test_any_text_reads_as_a_page(document: str) -> None:
    page = read_page(document)
    assert isinstance(page.messages, list) and isinstance(page.payments, list)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["to", "from"]),
            st.integers(1, 100_000),
            st.from_regex(r"[a-z]{1,12}", fullmatch=True),
            _text.map(lambda s: " ".join(s.split())).filter(bool),
        ),
        max_size=8,
    ),
    st.lists(_text.map(lambda s: " ".join(s.split())).filter(bool), max_size=3),
)
def test_rendered_payments_and_messages_read_back(
    rows: list[tuple[str, int, str, str]], messages: list[str]
) -> None:
    """As the app's templates render them (autoescaped), so read back as they were."""
    items = "".join(
        f'<li class="{d}">${n} {d} <b>{html.escape(a)}</b> for: <i>{html.escape(m)}</i></li>'
        for d, n, a, m in rows
    )
    notes = "".join(f'<li class="message success">{html.escape(m)}</li>' for m in messages)
    page = read_page(
        f'<html><head><title>Your payments - djbank</title></head><body><ul class="messages">'
        f'{notes}</ul><ul class="payments">{items}</ul>'
        '<input type="hidden" name="csrfmiddlewaretoken" value="tok"></body></html>'
    )
    assert page.payments == [Payment(d, n, a, m) for d, n, a, m in rows]
    assert page.messages == messages
    assert page.token == "tok"
    assert page.title == "Your payments - djbank"


def test_form_errors_are_read() -> None:
    page = read_page(
        '<ul class="errorlist" id="id_credit_error"><li>No such account.</li></ul>'
        '<ul class="errorlist"><li>Ensure this value is greater than or equal to 1.</li></ul>'
    )
    assert page.errors == ["No such account.", "Ensure this value is greater than or equal to 1."]


def test_a_reply_is_accepted_only_when_it_redirects_home() -> None:
    empty = read_page("")
    assert Reply(302, "/", empty).accepted
    assert not Reply(302, "/accounts/login/?next=/pay/", empty).accepted
    assert not Reply(400, "", empty).accepted
    assert not Reply(403, "", empty).accepted
