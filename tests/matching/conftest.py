"""Every contract test runs once per book: `-k adaptive` (make test-adaptive) picks the adaptive book."""
import pytest

from matching.engine import BOOKS


@pytest.fixture(params=sorted(BOOKS))
def book_kind(request) -> str:
    return request.param


@pytest.fixture
def book(book_kind):
    return BOOKS[book_kind]()
