"""collect_pages against scripted servers: the stop rules (total, empty page, two pages with
nothing new) and what must NOT stop a listing (one repeated page, a short page)."""

from __future__ import annotations

from novita_notebook.api import collect_pages


def server(items: list[dict], size: int, *, base: int, total: bool = True, cap: int | None = None):
    """A fake list endpoint; ``base`` 1 answers page 0 like page 1. Records the pages asked."""
    asked: list[int] = []
    per_page = min(size, cap) if cap else size

    def fetch(page: int):
        asked.append(page)
        index = max(page - base, 0)
        chunk = items[index * per_page : (index + 1) * per_page]
        return chunk, (len(items) if total else None)

    return fetch, asked


ITEMS = [{"id": f"i{n}"} for n in range(25)]


def test_zero_based_stops_at_total():
    fetch, asked = server(ITEMS, 10, base=0)
    assert collect_pages(fetch) == ITEMS
    assert asked == [0, 1, 2]


def test_one_based_repeated_first_page_does_not_end_the_listing():
    fetch, asked = server(ITEMS, 10, base=1)
    assert collect_pages(fetch) == ITEMS
    assert asked == [0, 1, 2, 3]


def test_without_total_an_empty_page_ends_it():
    for base, pages in ((0, [0, 1, 2, 3]), (1, [0, 1, 2, 3, 4])):
        fetch, asked = server(ITEMS, 10, base=base, total=False)
        assert collect_pages(fetch) == ITEMS
        assert asked == pages


def test_a_short_page_does_not_end_it_when_the_server_caps_page_size():
    fetch, asked = server(ITEMS, 10, base=0, total=False, cap=4)
    assert collect_pages(fetch) == ITEMS
    assert asked == list(range(8))  # 7 pages of <= 4, then an empty one


def test_two_pages_in_a_row_with_nothing_new_end_it():
    calls: list[int] = []

    def stuck(page: int):  # a server ignoring pageNum: always the same page, no total
        calls.append(page)
        return ITEMS[:10], None

    assert collect_pages(stuck) == ITEMS[:10]
    assert calls == [0, 1, 2]


def test_duplicates_from_shifting_items_are_dropped_and_idless_items_kept():
    pages = {0: [{"id": "a"}, {"id": "b"}], 1: [{"id": "b"}, {"name": "no-id"}], 2: []}
    assert collect_pages(lambda p: (pages[p], None)) == [
        {"id": "a"},
        {"id": "b"},
        {"name": "no-id"},
    ]


def test_on_call_counts_every_request_and_max_pages_bounds_it():
    count = []
    fetch, asked = server(ITEMS, 10, base=1, total=False)
    assert collect_pages(fetch, on_call=lambda: count.append(1), max_pages=2) == ITEMS[:10]
    assert asked == [0, 1] and len(count) == 2
