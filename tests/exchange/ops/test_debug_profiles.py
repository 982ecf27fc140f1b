"""The troubleshooting profiles of a web process, for staff only: the heap's top allocations and a CPU profile
in collapsed stacks that flamegraph tools read."""
import threading
import time

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

kept: list = []


def client_of(staff: bool) -> APIClient:
    client = APIClient()
    client.force_authenticate(User.objects.create_user("staff" if staff else "trader", is_staff=staff))
    return client


def allocate_a_lot_of_small_lists(done: threading.Event) -> None:
    while not done.is_set():
        kept.append([0] * 100)
        time.sleep(0.001)


def spin_in_a_recognisable_function(done: threading.Event) -> None:
    while not done.is_set():
        sum(range(1000))


def while_running(target, path: str, query: dict, name: str = "busy"):
    """The staff's answer from `path`, asked while `target` runs in a thread of its own (until it is answered:
    the first request of a process may take a while to set up)."""
    done = threading.Event()
    thread = threading.Thread(target=target, args=(done,), name=name)
    thread.start()
    try:
        return client_of(staff=True).get(path, query)
    finally:
        done.set()
        thread.join()


def test_the_heap_names_the_line_that_holds_the_memory():
    response = while_running(allocate_a_lot_of_small_lists, "/debug/pprof/heap", {"seconds": 0.8, "limit": 5})
    kept.clear()

    assert response.status_code == 200
    top = response.json()["top"]
    allocating_line = allocate_a_lot_of_small_lists.__code__.co_firstlineno + 2
    assert top[0]["where"].endswith(f"test_debug_profiles.py:{allocating_line}")
    assert top[0]["size_bytes"] > 10_000 and len(top) <= 5


def test_the_cpu_profile_is_collapsed_stacks_with_the_busy_function():
    response = while_running(spin_in_a_recognisable_function, "/debug/pprof/profile", {"seconds": 0.5}, "spinner")

    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    lines = response.content.decode().splitlines()
    spinner = [line for line in lines if line.startswith("spinner;")]
    assert spinner and all(line.rsplit(" ", 1)[1].isdigit() for line in lines)
    assert sum(int(line.rsplit(" ", 1)[1]) for line in spinner if "spin_in_a_recognisable_function" in line) > 10


@pytest.mark.parametrize("path", ["/debug/pprof/heap", "/debug/pprof/profile"])
def test_only_staff_get_profiles_and_a_bad_window_is_refused(path):
    assert client_of(staff=False).get(path, {"seconds": 0.1}).status_code == 403
    assert APIClient().get(path).status_code in (401, 403)
    refused = client_of(staff=True).get(path, {"seconds": 3600})
    assert refused.status_code == 400 and "seconds" in refused.content.decode()
